"""Encoder and decoder in different processes with different thread counts: the same latent, pixels within a level."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

ENCODE = textwrap.dedent("""
    import sys, pathlib, torch, kdic
    from kdic.codec import encode_image, read_image, write_png
    torch.set_num_threads(2)
    model = kdic.load(sys.argv[1])
    out = pathlib.Path(sys.argv[3])
    for path in sorted(pathlib.Path(sys.argv[2]).glob("*.png")):
        data, reconstruction, _ = encode_image(model, read_image(path), estimate=False)
        (out / (path.stem + ".kdic")).write_bytes(data)
        write_png(reconstruction, out / (path.stem + ".enc.png"))
    print(torch.get_num_threads())
""")
DECODE = textwrap.dedent("""
    import sys, pathlib, torch, kdic
    from kdic.codec import decode_bytes, write_png
    torch.set_num_threads(1)
    model = kdic.load(sys.argv[1])
    for path in sorted(pathlib.Path(sys.argv[2]).glob("*.kdic")):
        image, _ = decode_bytes(model, path.read_bytes())
        write_png(image, path.with_suffix(".dec.png"))
    print(torch.get_num_threads())
""")


@pytest.mark.slow
def test_all_kodak_images_decode_identically_across_processes_and_threads(tmp_path, kodak_dir):
    import torch

    import kdic

    torch.manual_seed(0)
    weights = kdic.save(kdic.build_model("kdic-tiny"), tmp_path / "kdic-tiny.safetensors")
    enc = subprocess.run(
        [sys.executable, "-c", ENCODE, str(weights), str(kodak_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    dec = subprocess.run(
        [sys.executable, "-c", DECODE, str(weights), str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert (enc.stdout.strip(), dec.stdout.strip()) == ("2", "1")
    encoded = sorted(tmp_path.glob("*.enc.png"))
    assert len(encoded) == 24
    for path in encoded:
        decoded = path.with_name(path.name.replace(".enc.png", ".dec.png"))
        difference = np.abs(np.asarray(Image.open(path)).astype(np.int16) - np.asarray(Image.open(decoded)))
        assert difference.max() <= 1, path.name  # the same latent (digest); float synthesis on 2 vs 1 threads
