"""The .kdic container binds its parts: forged headers, other weights and fuzzed files are refused;
big images are tiled without seams; format-1 files still decode bit-identically."""

from __future__ import annotations

import dataclasses
import json
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import kdic
from kdic.checkpoint import load
from kdic.cli import main
from kdic.codec import decode_bytes, encode_image, read_image, unpack
from kdic.codec.bitstream import FORMAT_VERSION, MAX_PIXELS, MAX_SIDE, Header, pack
from kdic.codec.pipeline import latent_size, synthesize_image
from kdic.data import (
    INDEX_NAME,
    WEIGHTS_DIR,
    build_weights_index,
    bundled_weights,
    sample_image_path,
    weights_for_digest,
)
from kdic.errors import BitstreamError, KdicError
from kdic.models import ModelConfig, SCCTXConfig, StageConfig, TransformConfig

from .helpers import FIXED_RATE_WEIGHTS

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return kdic.build_model("kdic-tiny").eval()


@pytest.fixture(scope="module")
def crop():
    return read_image(sample_image_path())[100:300, 200:500]


@pytest.fixture(scope="module")
def tiled(model, crop):
    """200x300 coded in entropy tiles of 8 latent units: 2 x 3 tiles, 12 streams."""
    return encode_image(model, crop, entropy_tile=8)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _repack(data: bytes, **fields) -> bytes:
    """The same streams under a header with some fields changed, CRC recomputed (what a forger does)."""
    header, streams = unpack(data)
    return pack(dataclasses.replace(header, **fields), streams)


def _decode_legacy(model, data: bytes) -> np.ndarray | None:
    """A format-1/2 file's image, or None where this CPU's float entropy parameters differ from the
    writer's (formats 1 and 2 computed them in float32: the decoder then refuses with one clear line,
    the reason format 3 exists)."""
    try:
        image, _ = decode_bytes(model, data)
    except BitstreamError as exc:
        assert "cannot be decoded" in str(exc) or "does not match the encoder" in str(exc), exc
        return None
    return image


@pytest.mark.parametrize("name", sorted(json.loads((FIXTURES / "expected.json").read_text())))
def test_format_1_files_still_parse_and_decode(name):
    expected = json.loads((FIXTURES / "expected.json").read_text())[name]
    data = (FIXTURES / f"{name}.kdic").read_bytes()
    header, _ = unpack(data)
    assert header.version == 1 and header.entropy_tile == 0
    image = _decode_legacy(load(FIXED_RATE_WEIGHTS / expected["weights"]), data)
    assert image is None or image.shape == (expected["height"], expected["width"], 3)


FORMAT2 = Path(__file__).parent / "fixtures" / "format2"


@pytest.mark.parametrize("name", sorted(json.loads((FORMAT2 / "expected.json").read_text())))
def test_format_2_files_still_parse_and_decode(name):
    """Written by kdic 0.1.0 (multi-tile, whole-image and gray files): parsed and decoded as before,
    or refused cleanly on a CPU whose float entropy parameters differ from the writer's."""
    expected = json.loads((FORMAT2 / "expected.json").read_text())[name]
    data = (FORMAT2 / f"{name}.kdic").read_bytes()
    header, _ = unpack(data)
    assert header.version == 2 and header.entropy_tile == expected["entropy_tile"]
    image = _decode_legacy(load(FIXED_RATE_WEIGHTS / expected["weights"]), data)
    assert image is None or image.shape[:2] == (expected["height"], expected["width"])


def test_kodak_size_images_are_one_tile():
    """Tiling does not engage below 2048 pixels a side: one y and one z stream, as format 1 wrote."""
    model = load(bundled_weights("student"))
    new, _, _ = encode_image(model, read_image(sample_image_path()), estimate=False, reconstruct=False, lmbda=0.0134)
    header, streams = unpack(new)
    assert header.version == FORMAT_VERSION and len(streams) == 2


def test_multi_tile_round_trip_and_stream_count(model, crop, tiled):
    data, reconstruction, report = tiled
    header, streams = unpack(data)
    assert header.entropy_tile == 8 and len(streams) == 2 * 2 * 3
    decoded, _ = decode_bytes(model, data)
    assert np.array_equal(decoded, reconstruction)
    assert report.estimated_bits_per_pixel == pytest.approx(report.bits_per_pixel, rel=0.1)


def test_tiled_synthesis_equals_whole_image_synthesis(model, crop):
    """A margin of 8 latent units is enough context: transform tiles leave no seam at all."""
    image = np.concatenate([crop, crop[::-1]], axis=0)  # 400 x 300: 25 x 19 latent units, padded 28 x 20
    data, _, _ = encode_image(model, image, estimate=False, reconstruct=False)
    header, streams = unpack(data)
    y_hat = model.decompress_latent(streams, (1, 96, *latent_size(model, 400, 300)))["y_hat"]
    whole = synthesize_image(model, y_hat, 400, 300, 3, 64)
    tiles = synthesize_image(model, y_hat, 400, 300, 3, 8)
    assert np.array_equal(whole, tiles)


def test_gray_in_gray_out(model, crop, tmp_path):
    gray = np.round(crop.mean(axis=2)).astype(np.uint8)
    data, reconstruction, _ = encode_image(model, gray)
    assert unpack(data)[0].channels == 1
    decoded, _ = decode_bytes(model, data)
    assert decoded.shape == gray.shape and np.array_equal(decoded, reconstruction)


@pytest.mark.parametrize(
    "field, value",
    [
        ("width", 299),
        ("height", 199),
        ("width", 301),
        ("height", 400),
        ("channels", 1),
        ("entropy_tile", 16),
        ("transform_tile", 8),
        ("lmbda", 0.5),
        ("content_digest", b"\x01" * 8),
    ],
)
def test_edited_header_fields_are_refused(model, tiled, field, value):
    with pytest.raises(BitstreamError):
        decode_bytes(model, _repack(tiled[0], **{field: value}))


def test_weights_digest_rewritten_for_other_weights_is_refused(tiled):
    """The weights digest is only a claim; the content digest catches a file from other weights."""
    torch.manual_seed(1)
    other = kdic.build_model("kdic-tiny").eval()
    forged = _repack(tiled[0], weights_digest=kdic.checkpoint.weights_digest(other)[:8])
    with pytest.raises(BitstreamError, match="does not match the encoder's|cannot be decoded"):
        decode_bytes(other, forged)


@pytest.mark.parametrize("edit", ["swap y and z", "drop a tile", "move a byte between streams"])
def test_edited_streams_are_refused(model, tiled, edit):
    header, streams = unpack(tiled[0])
    if edit == "swap y and z":
        streams = [streams[1], streams[0], *streams[2:]]
    elif edit == "drop a tile":
        streams = streams[2:]
    else:
        streams = [streams[0] + streams[1][:4], streams[1][4:], *streams[2:]]
    with pytest.raises(BitstreamError):
        decode_bytes(model, pack(header, streams))


def test_declared_size_is_refused_before_allocating(model):
    for width, height in ((MAX_SIDE + 1, 1), (16384, 16384), (0, 5)):
        body = pack(Header("kdic-tiny", b"\x00" * 8, 16, 16), [b""] * 2)[:-4]
        offset = 4 + 2 + len("kdic-tiny") + 8
        with pytest.raises(BitstreamError, match="exceeds the limit|is empty"):
            unpack(_with_crc(body[:offset] + struct.pack("<II", width, height) + body[offset + 8 :]))
    assert 16384 * 16384 > MAX_PIXELS
    # an allowed but large size with two tiny streams: refused by the stream count, not by running out of memory
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    digest = kdic.checkpoint.weights_digest(model)[:8]
    big = pack(Header("kdic-tiny", digest, 16384, 8192), [b"\x00" * 4] * 2)
    with pytest.raises(BitstreamError, match="expected 64 streams"):
        decode_bytes(model, big)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


@pytest.mark.parametrize("model_id", ["../../../tmp/evil/x", "/tmp/x", "a**b", "../" * 12 + "**/*", "KDIC", "x" * 65])
def test_model_ids_that_could_name_paths_are_refused(tmp_path, tiled, model_id, capsys):
    header, streams = unpack(tiled[0])
    raw = pack(header, streams)
    start = 6
    forged = bytearray(raw[:4] + bytes([2, len(model_id)]) + model_id.encode() + raw[start + len(header.model_id) : -4])
    path = tmp_path / "forged.kdic"
    path.write_bytes(_with_crc(bytes(forged)))
    assert main(["decompress", str(path), "-o", str(tmp_path / "out.png"), "--quiet"]) == 2
    assert "invalid model id" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_shipped_weights_are_found_by_exact_index_entries():
    index = json.loads((WEIGHTS_DIR / INDEX_NAME).read_text())
    assert build_weights_index() == index, "run scripts/write_weights_index.py"
    entry = index["weights"][0]
    path = weights_for_digest(entry["model"], bytes.fromhex(entry["digest"])[:8])
    assert path == WEIGHTS_DIR / entry["file"]
    with pytest.raises(KdicError, match="no shipped weights match"):
        weights_for_digest(entry["model"], b"\x00" * 8)
    with pytest.raises(KdicError, match="no shipped weights match"):
        weights_for_digest("kdic-tiny-q1.safetensors", bytes.fromhex(entry["digest"])[:8])


def fuzz_model() -> kdic.models.LearnedImageCodec:
    """The smallest codec with every part of the real one (two latent tiles of SCCTX-coded y, factorized z)."""
    stage = StageConfig("s2c-conv", 0, 8)
    config = ModelConfig(
        "fuzz-tiny",
        TransformConfig(16, (stage,) * 3, (stage,) * 3),
        SCCTXConfig(hyper_channels=8, groups=(4,), style="elic"),
    )
    torch.manual_seed(0)
    return kdic.models.LearnedImageCodec(config).eval()


def fuzz(trials: int = 3000, seed: int = 2026) -> dict:
    """Seeded mutations and crafted files: each decodes to the original pixels or raises BitstreamError."""
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest and keeps the time honest on a busy machine
    model = fuzz_model()
    image = np.random.default_rng(0).integers(0, 256, (40, 150, 3), dtype=np.uint8)
    data, original, _ = encode_image(model, image, estimate=False, entropy_tile=8)
    header, streams = unpack(data)
    assert len(streams) == 4
    header_size = len(data) - 4 - sum(len(s) for s in streams)
    rng = np.random.default_rng(seed)
    fields = [
        ("width", lambda: int(rng.integers(1, 400))),
        ("height", lambda: int(rng.integers(1, 400))),
        ("channels", lambda: 1),
        ("entropy_tile", lambda: int(rng.choice([8, 16, 64, 256]))),
        ("transform_tile", lambda: int(rng.choice([8, 16, 128]))),
        ("weights_digest", lambda: rng.bytes(8)),
        ("content_digest", lambda: rng.bytes(8)),
    ]
    outcomes = {"decoded exactly": 0, "refused": 0, "truncated or extended, decoded": 0}
    start = time.perf_counter()
    for trial in range(trials):
        kind = trial % 6
        mutated = bytearray(data)
        if kind == 0:  # bit flips anywhere, CRC left as it is
            for pos in rng.integers(0, len(data), rng.integers(1, 4)):
                mutated[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # truncation or garbage appended
            mutated = mutated[: rng.integers(0, len(data))] if rng.random() < 0.7 else mutated + rng.bytes(5)
        elif kind in (2, 3):  # payload (2) or header (3) bytes rewritten, CRC recomputed
            lo, hi = (header_size, len(data) - 4) if kind == 2 else (0, header_size)
            for pos in rng.integers(lo, hi, rng.integers(1, 8)):
                mutated[pos] = int(rng.integers(0, 256))
            mutated = bytearray(_with_crc(bytes(mutated[:-4])))
        elif kind == 4:  # one header field forged through the packer
            name, value = fields[int(rng.integers(0, len(fields)))]
            mutated = bytearray(pack(dataclasses.replace(header, **{name: value()}), streams))
        else:  # streams re-split, dropped, duplicated or swapped under a valid header
            order = list(range(len(streams)))
            choice = rng.integers(0, 3)
            if choice == 0:
                order = list(rng.permutation(order))
            elif choice == 1:
                order = order[: int(rng.integers(0, len(order)))]
            else:
                order = order + order[: int(rng.integers(1, 3))]
            mutated = bytearray(pack(header, [streams[i] for i in order] or [b""]))
        try:
            decoded, _ = decode_bytes(model, bytes(mutated))
        except BitstreamError:
            outcomes["refused"] += 1
        else:
            assert np.array_equal(decoded, original), f"trial {trial} decoded to other pixels"
            outcomes["decoded exactly"] += 1
            outcomes["truncated or extended, decoded"] += kind == 1
    outcomes["seconds"] = time.perf_counter() - start
    outcomes["peak_rss_mb"] = peak_rss_mb()
    return outcomes


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it starts afresh at exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


@pytest.mark.slow
def test_fuzz_3000_files_decode_exactly_or_fail_with_one_line_in_bounded_memory():
    """In a fresh process, so that its peak memory is its own."""
    code = "import json; from tests.test_bitstream_hardening import fuzz; print(json.dumps(fuzz()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcomes["truncated or extended, decoded"] == 0  # a file of another length is never accepted
    assert outcomes["refused"] > 2000 and outcomes["decoded exactly"] > 0  # flips in CRC-free spots are rare
    assert outcomes["seconds"] < 30, outcomes
    assert outcomes["peak_rss_mb"] < 400, outcomes


def test_cli_codes_a_rotated_photo_upright_and_a_gray_png_as_gray(tmp_path, crop, capsys):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # a portrait phone photo stored sideways
    Image.fromarray(crop).save(tmp_path / "portrait.jpg", quality=95, exif=exif)
    Image.fromarray(crop[..., 1]).save(tmp_path / "gray.png")
    weights = tmp_path / "w.safetensors"
    torch.manual_seed(0)
    kdic.save(kdic.build_model("kdic-tiny"), weights)
    out = tmp_path / "out"
    out.mkdir()
    assert (
        main(
            [
                "compress",
                str(tmp_path / "portrait.jpg"),
                str(tmp_path / "gray.png"),
                "-o",
                str(out),
                "--weights",
                str(weights),
                "--verbose",
                "--quiet",
            ]
        )
        == 0
    )
    assert "EXIF orientation 6 applied" not in capsys.readouterr().err  # --quiet silences notes too
    assert (
        main(
            [
                "compress",
                str(tmp_path / "portrait.jpg"),
                "-o",
                str(tmp_path / "p.kdic"),
                "--weights",
                str(weights),
                "--verbose",
            ]
        )
        == 0
    )
    assert "portrait.jpg: EXIF orientation 6 applied (rotated 90 degrees clockwise)" in capsys.readouterr().err
    assert main(["decompress", str(out), "-o", str(out), "--weights", str(weights), "--quiet"]) == 0
    with Image.open(out / "portrait.png") as upright, Image.open(out / "gray.png") as gray:
        assert upright.size == (crop.shape[0], crop.shape[1]) and upright.mode == "RGB"
        assert gray.size == (crop.shape[1], crop.shape[0]) and gray.mode == "L"


@pytest.mark.slow
def test_big_photo_codes_in_bounded_memory():
    """2560 x 1600 (4 MP, 6 transform tiles, 2 entropy tiles) in a fresh process: decoded equals the
    encoder's reconstruction and the peak stays at what one transform tile needs, not the image."""
    code = """if True:
        import json, sys
        sys.path.insert(0, "scripts")
        from big_image_memory import mosaic
        import numpy as np
        from kdic.checkpoint import load
        from kdic.codec import decode_bytes, encode_image
        from kdic.data import bundled_weights, quality_lmbda
        from tests.test_bitstream_hardening import peak_rss_mb
        model = load(bundled_weights("student"))
        image = mosaic(2560, 1600)
        data, reconstruction, report = encode_image(model, image, estimate=False, lmbda=quality_lmbda(3))
        decoded, _ = decode_bytes(model, data)
        print(json.dumps({"equal": bool(np.array_equal(decoded, reconstruction)), "peak_mb": peak_rss_mb(),
                          "bpp": report.bits_per_pixel}))
    """
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["equal"] and 0.05 < result["bpp"] < 2
    assert result["peak_mb"] < 1700, result  # one tile's activations (float64 entropy path); the whole image ~3 GB
