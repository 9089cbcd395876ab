"""Write tests/fixtures/format<N>, N the format kdic writes (3 and 4 are committed): files of the
bundled sample (whole image, a multi-tile crop, a gray crop) with kdic 0.1's fixed-rate weights,
each with the PNG this machine decodes it to.

Any machine must decode these files to exactly the encoder's latent (the content digest checks it)
and to pixels within the synthesis tolerance of the reference PNG (tests/test_exact_decoding.py).

    python scripts/make_exact_fixtures.py
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch

from kdic.checkpoint import load
from kdic.codec import decode_bytes, encode_image, read_image, write_png
from kdic.codec.bitstream import FORMAT_VERSION
from kdic.data import sample_image_path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / f"format{FORMAT_VERSION}"
WEIGHTS = REPO / "results" / "repro" / "shipped-0.1"  # kdic 0.1's shipped fixed-rate weights

# name -> (weights, crop (top, bottom, left, right) or None, gray, entropy tile)
FIXTURES = {
    "kodim23-teacher-q4": ("s2c-hybrid-tiny-q4.safetensors", None, False, 128),
    "kodim23-crop-student-q2-tiled": ("kdic-tiny-q2.safetensors", (100, 300, 200, 500), False, 8),
    "kodim23-crop-gray-student-q1": ("kdic-tiny-q1.safetensors", (0, 256, 0, 320), True, 128),
}


def source(crop: tuple[int, int, int, int] | None, gray: bool) -> np.ndarray:
    image = read_image(sample_image_path())
    if crop is not None:
        image = image[crop[0] : crop[1], crop[2] : crop[3]]
    return image.mean(axis=2).round().astype(np.uint8) if gray else image


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    expected = {}
    for name, (weights, crop, gray, tile) in FIXTURES.items():
        model = load(WEIGHTS / weights)
        data, _, _ = encode_image(model, source(crop, gray), estimate=False, reconstruct=False, entropy_tile=tile)
        (OUT / f"{name}.kdic").write_bytes(data)
        image, _ = decode_bytes(model, data)
        write_png(image, OUT / f"{name}.png")
        expected[name] = {"weights": weights, "crop": crop, "gray": gray, "entropy_tile": tile}
    expected["_machine"] = {
        "processor": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {len(FIXTURES)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
