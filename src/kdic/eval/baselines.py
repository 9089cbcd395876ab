"""Live classical-codec baselines measured exactly like kdic (``kdic baselines``).

Pillow codecs always run: JPEG, WebP, AVIF and JPEG 2000. JPEG XL runs when ``imagecodecs`` is
installed, HEVC-intra 4:4:4 when ``ffmpeg`` with libx265 is on the PATH; otherwise a notice says why
they were skipped. Every codec gets at least 6 quality points; rate is 8 x encoded bytes / pixels.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .metrics import ms_ssim_uint8, psnr_uint8

POINT_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")


@dataclass(frozen=True)
class ClassicalCodec:
    name: str
    description: str
    qualities: tuple[float, ...]
    encode: Callable[[np.ndarray, float], bytes]
    decode: Callable[[bytes], np.ndarray]


def _pillow_encode(fmt: str, **fixed) -> Callable[[np.ndarray, float], bytes]:
    def encode(image: np.ndarray, quality: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, quality=int(quality), **fixed)
        return buffer.getvalue()

    return encode


def _pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _j2k_encode(image: np.ndarray, bits_per_pixel: float) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer,
        format="JPEG2000",
        irreversible=True,
        mct=1,
        quality_mode="rates",
        quality_layers=[24.0 / bits_per_pixel],
    )
    return buffer.getvalue()


def _jxl_codec() -> ClassicalCodec | str:
    try:
        import imagecodecs
    except ImportError:
        return "JPEG XL skipped: install imagecodecs (pip install -e '.[baselines]') to measure it"

    return ClassicalCodec(
        "jpeg-xl",
        "JPEG XL via imagecodecs (libjxl), effort 7",
        (0.5, 1.0, 1.5, 2.5, 4.0, 6.0, 9.0),
        lambda image, d: imagecodecs.jpegxl_encode(image, distance=d, effort=7),
        lambda data: np.asarray(imagecodecs.jpegxl_decode(data))[..., :3].astype(np.uint8),
    )


def _hevc_codec() -> ClassicalCodec | str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return "HEVC-intra 4:4:4 skipped: ffmpeg (with libx265) is not on the PATH"

    def run(args: list[str]) -> None:
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", *args], check=True, capture_output=True)

    def encode(image: np.ndarray, qp: float) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            Image.fromarray(image).save(Path(tmp) / "in.png")
            run(
                [
                    "-i",
                    str(Path(tmp) / "in.png"),
                    "-c:v",
                    "libx265",
                    "-pix_fmt",
                    "yuv444p",
                    "-preset",
                    "medium",
                    "-x265-params",
                    f"qp={int(qp)}:keyint=1:log-level=error",
                    "-frames:v",
                    "1",
                    str(Path(tmp) / "out.hevc"),
                ]
            )
            return (Path(tmp) / "out.hevc").read_bytes()

    def decode(data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "in.hevc").write_bytes(data)
            run(["-i", str(Path(tmp) / "in.hevc"), "-pix_fmt", "rgb24", str(Path(tmp) / "out.png")])
            return np.asarray(Image.open(Path(tmp) / "out.png").convert("RGB"), dtype=np.uint8).copy()

    try:
        probe = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "HEVC-intra 4:4:4 skipped: ffmpeg does not run"
    if "libx265" not in probe.stdout:
        return "HEVC-intra 4:4:4 skipped: this ffmpeg has no libx265"
    return ClassicalCodec(
        "hevc-intra-444",
        "HEVC intra, x265 via ffmpeg, YUV 4:4:4, preset medium",
        (22, 27, 32, 37, 42, 47),
        encode,
        decode,
    )


def available_codecs() -> tuple[list[ClassicalCodec], list[str]]:
    """The codecs that can run here, and a notice for each that cannot."""
    codecs = [
        ClassicalCodec(
            "jpeg",
            "JPEG via Pillow (libjpeg), 4:2:0, optimized Huffman tables",
            (10, 20, 30, 50, 70, 85, 95),
            _pillow_encode("JPEG", optimize=True),
            _pillow_decode,
        ),
        ClassicalCodec(
            "webp",
            "WebP via Pillow (libwebp), lossy, method 6",
            (5, 15, 30, 50, 70, 85, 95),
            _pillow_encode("WEBP", method=6),
            _pillow_decode,
        ),
        ClassicalCodec(
            "avif",
            "AVIF via Pillow (libavif/aom), 4:4:4, speed 6",
            (20, 35, 50, 65, 75, 85, 92),
            _pillow_encode("AVIF", speed=6, subsampling="4:4:4"),
            _pillow_decode,
        ),
        ClassicalCodec(
            "jpeg2000",
            "JPEG 2000 via Pillow (OpenJPEG), 9/7 wavelet, colour transform, rate-controlled",
            (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0),
            _j2k_encode,
            _pillow_decode,
        ),
    ]
    notices = []
    for extra in (_jxl_codec(), _hevc_codec()):
        (codecs.append(extra) if isinstance(extra, ClassicalCodec) else notices.append(extra))
    return codecs, notices


def evaluate_codec(
    codec: ClassicalCodec, images: list[tuple[str, np.ndarray]], dataset: str = "", quiet: bool = False
) -> dict:
    """One CompressAI-format result file for a classical codec over all its quality points."""
    points = []
    for quality in tqdm(codec.qualities, desc=codec.name, disable=quiet, leave=False):
        rows = []
        for name, image in images:
            start = time.perf_counter()
            data = codec.encode(image, quality)
            encode_seconds = time.perf_counter() - start
            start = time.perf_counter()
            decoded = codec.decode(data)
            decode_seconds = time.perf_counter() - start
            rows.append(
                {
                    "name": name,
                    "bpp": 8 * len(data) / (image.shape[0] * image.shape[1]),
                    "psnr-rgb": psnr_uint8(decoded, image),
                    "ms-ssim-rgb": ms_ssim_uint8(decoded, image),
                    "encoding_time": encode_seconds,
                    "decoding_time": decode_seconds,
                }
            )
        points.append(
            {"quality": quality, "images": rows, "mean": {k: _mean([r[k] for r in rows]) for k in POINT_KEYS}}
        )
    points.sort(key=lambda p: p["mean"]["bpp"])
    return {
        "name": codec.name,
        "description": codec.description,
        "results": {k: [p["mean"][k] for p in points] for k in POINT_KEYS},
        "meta": {
            "dataset": dataset,
            "images": len(images),
            "quality": [p["quality"] for p in points],
            "bpp": "8 x encoded bytes / pixels, per image, then averaged",
        },
        "per_image": [{"quality": p["quality"], "images": p["images"]} for p in points],
    }


def timed_codecs(image: np.ndarray, target_bpp: float, runs: int = 3) -> list[dict]:
    """Each classical codec that runs here on ``image``, at the quality whose file is nearest
    ``target_bpp``: its rate, PSNR and median encode and decode seconds (``kdic bench`` sets them
    beside kdic's models)."""
    rows = []
    for codec in available_codecs()[0]:
        files = {quality: codec.encode(image, quality) for quality in codec.qualities}
        quality = min(files, key=lambda q: abs(8 * len(files[q]) / image[..., 0].size - target_bpp))
        encode_s, decode_s = [], []
        for _ in range(runs):
            start = time.perf_counter()
            data = codec.encode(image, quality)
            encode_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            decoded = codec.decode(data)
            decode_s.append(time.perf_counter() - start)
        rows.append(
            {
                "name": codec.name,
                "quality": quality,
                "bpp": 8 * len(data) / image[..., 0].size,
                "psnr": psnr_uint8(decoded, image),
                "encode_s": float(np.median(encode_s)),
                "decode_s": float(np.median(decode_s)),
            }
        )
    return rows


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None
