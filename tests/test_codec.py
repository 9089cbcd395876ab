"""Real bitstreams on disk: bit-exact round trips, any size, explicit input conversions, clean failures."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import kdic
from kdic.codec import decode_bytes, encode_image, read_image, unpack
from kdic.codec.bitstream import MAX_PIXELS, Header, pack
from kdic.data import sample_image_path
from kdic.errors import BitstreamError, ImageInputError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return kdic.build_model("kdic-tiny").eval()


@pytest.fixture(scope="module")
def sample():
    return read_image(sample_image_path())


@pytest.fixture(scope="module")
def sample_bytes(model, sample):
    return encode_image(model, sample)


@pytest.mark.parametrize("name", ["kdic-tiny", "s2c-hybrid-tiny"])
def test_kodak_round_trip_is_bit_exact_and_counts_every_byte(name, tmp_path, sample):
    torch.manual_seed(0)
    model = kdic.build_model(name).eval()
    data, reconstruction, report = encode_image(model, sample)
    path = tmp_path / "kodim23.kdic"
    path.write_bytes(data)
    decoded, _ = decode_bytes(model, path.read_bytes())
    assert np.array_equal(decoded, reconstruction)
    assert report.bits_per_pixel == 8 * path.stat().st_size / (768 * 512)
    header, streams = unpack(data)
    assert (header.width, header.height, header.model_id) == (768, 512, name)
    # magic, version + id length, id, weights digest, size, channels + tiles + lambda, content digest, count,
    # lengths, CRC
    assert len(data) == sum(len(s) for s in streams) + 4 + 2 + len(name) + 8 + 8 + 9 + 8 + 2 + 4 * 2 + 4
    # the likelihood estimate and the real size agree closely even for untrained weights
    assert report.bits_per_pixel == pytest.approx(report.estimated_bits_per_pixel, rel=0.05)


def test_model_api_compress_decompress(model, sample):
    x = torch.from_numpy(sample[:128, :192]).permute(2, 0, 1)[None].float() / 255
    coded = model.compress(torch.cat([x, x.flip(-1)]))
    assert coded["shape"] == (2, 3) and len(coded["strings"]) == 2 and len(coded["strings"][0]) == 2
    out = model.decompress(coded["strings"], coded["shape"])
    assert torch.equal(out["x_hat"], model.synthesize(coded["y_hat"]))
    assert model.update() is True


@pytest.mark.parametrize("size", [(1, 1), (1, 70), (65, 3), (67, 93), (130, 64)])
def test_any_image_size_round_trips(model, size):
    image = np.random.default_rng(sum(size)).integers(0, 256, size + (3,), dtype=np.uint8)
    data, reconstruction, _ = encode_image(model, image)
    decoded, report = decode_bytes(model, data)
    assert decoded.shape == image.shape and np.array_equal(decoded, reconstruction)
    assert (report.height, report.width) == size


@pytest.mark.parametrize("name", ["tcm-kd", "elic"])
def test_other_families_round_trip(name):
    torch.manual_seed(0)
    model = kdic.build_model(name).eval()
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data, reconstruction, _ = encode_image(model, image, estimate=False)
    assert np.array_equal(decode_bytes(model, data)[0], reconstruction)


def test_tables_follow_weight_changes(model):
    eb = kdic.build_model("kdic-tiny").latent_codec.entropy_bottleneck
    before = eb.coding_tables()
    assert eb.coding_tables() is before
    with torch.no_grad():
        eb.quantiles[:, 0, 1] += 3.0  # medians move up: more symbols below them, fewer above
    after = eb.coding_tables()
    assert after is not before and torch.equal(after.medians, before.medians + 3.0)
    assert (after.minima == before.minima + 3).all() and (after.maxima == before.maxima - 3).all()


def test_decoding_with_other_weights_fails_clearly(sample_bytes):
    torch.manual_seed(1)
    other = kdic.build_model("kdic-tiny").eval()
    with pytest.raises(BitstreamError, match="encoded with model 'kdic-tiny' .* decode with the same weights"):
        decode_bytes(other, sample_bytes[0])


def test_input_conversions(tmp_path, sample):
    gray = tmp_path / "gray.png"
    Image.fromarray(sample[..., 0]).save(gray)
    assert np.array_equal(read_image(gray), sample[..., 0])  # gray stays gray (2-D)
    palette = tmp_path / "palette.png"
    Image.fromarray(sample).convert("P").save(palette)
    assert read_image(palette).shape == sample.shape
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([sample, np.full(sample.shape[:2], 128, np.uint8)])).save(rgba)
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        assert np.array_equal(read_image(rgba), sample)


@pytest.mark.parametrize("kind", ["16-bit gray", "16-bit rgb", "not an image", "empty", "missing"])
def test_unsupported_inputs_are_refused(tmp_path, kind):
    path = tmp_path / "input.png"
    if kind == "16-bit gray":
        Image.fromarray(np.zeros((8, 8), np.uint16)).save(path)
    elif kind == "16-bit rgb":  # hand-made 16-bit RGB PNG header
        ihdr = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)
        chunk = b"IHDR" + ihdr
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)))
    elif kind == "not an image":
        path.write_text("hello")
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(ImageInputError):
        read_image(path)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"", "file is empty"),
        (lambda d: d[:3], "truncated"),
        (lambda d: b"PNG!" + d[4:], "bad magic"),
        (lambda d: d[:4] + bytes([9]) + d[5:], "unsupported format version 9"),
        (lambda d: d[:-10], "checksum mismatch"),
        (lambda d: d[:40] + bytes([d[40] ^ 0x10]) + d[41:], "checksum mismatch"),
        (lambda d: _with_crc(d[:-4] + b"\x00"), "unexpected bytes"),
        (lambda d: _with_crc(d[:-5]), "truncated"),
    ],
)
def test_malformed_files_raise_format_errors(sample_bytes, mutate, message):
    with pytest.raises(BitstreamError, match=message):
        unpack(mutate(sample_bytes[0]))


def test_declared_size_over_limit_is_refused_before_allocating():
    body = pack(Header("kdic-tiny", b"\x00" * 8, 16, 16), [b"\x00" * 4, b"\x00" * 4])[:-4]
    offset = 4 + 2 + len("kdic-tiny") + 8
    huge = body[:offset] + struct.pack("<II", 1 << 16, 1 << 16) + body[offset + 8 :]
    with pytest.raises(BitstreamError, match="exceeds the limit"):
        unpack(_with_crc(huge))
    assert (1 << 32) > MAX_PIXELS


def test_coding_throughput_benchmark_round_trips():
    from kdic.bench.coding import coding_throughput

    result = coding_throughput(num_symbols=20_000, chunk=5_000)
    assert result["encode_symbols_per_s"] > 0 and 0 < result["bits_per_symbol"] < 16
