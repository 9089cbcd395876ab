"""The input reader on real files written here: EXIF orientation, ICC profiles, animation, gray stays gray."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms, features

from kdic.codec import image_io, read_image, write_png
from kdic.data import sample_image_path
from kdic.errors import ImageInputError

needs_littlecms = pytest.mark.skipif(not image_io.HAVE_LITTLECMS, reason="Pillow built without littlecms2")


# Pillow's ImageCms builds only sRGB/Lab/XYZ profiles, so the non-sRGB ones are written by hand: minimal
# ICC v2 matrix/TRC profiles (header, tag table, desc/wtpt/colorants/gamma curves), which is what Adobe RGB,
# Display P3 and most camera profiles are.
def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15f16(x) + _s15f16(y) + _s15f16(z)


def _gamma(value: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(value * 256)) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * (8 + 4 + 67)


D50 = (0.9642, 1.0, 0.8249)


def _icc(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table, data = b"", b""
    start = 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", start + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", start + len(data))
        + b"none"
        + bytes([2, 0x10, 0, 0])
        + b"mntr"
        + space
        + b"XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + b"".join(map(_s15f16, D50))
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


# Adobe RGB (1998): D50-adapted colorants and gamma 563/256; its gamut is wider than sRGB's in greens/cyans.
ADOBE_RGB = _icc(
    b"RGB ",
    [
        (b"desc", _desc("Adobe-like RGB")),
        (b"wtpt", _xyz(*D50)),
        (b"rXYZ", _xyz(0.6097, 0.3111, 0.0195)),
        (b"gXYZ", _xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", _xyz(0.1492, 0.0632, 0.7446)),
    ]
    + [(tag, _gamma(563 / 256)) for tag in (b"rTRC", b"gTRC", b"bTRC")],
)
GRAY_22 = _icc(b"GRAY", [(b"desc", _desc("Gray gamma 2.2")), (b"wtpt", _xyz(*D50)), (b"kTRC", _gamma(2.2))])


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    return read_image(sample_image_path())


@pytest.fixture(scope="module")
def crop(sample) -> np.ndarray:
    """Not square, so a rotation shows in the shape."""
    return np.ascontiguousarray(sample[100:148, 200:264])


def _srgb_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _mode(path) -> str:
    with Image.open(path) as img:
        return img.mode


def _chroma(image: np.ndarray) -> float:
    return float((image.max(-1).astype(int) - image.min(-1)).mean())


# --- EXIF orientation --------------------------------------------------------------------------------------


def _with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_jpeg_orientation_6_is_rotated_clockwise_with_a_note(tmp_path, crop):
    path = tmp_path / "portrait.jpg"
    Image.fromarray(crop).save(path, quality=95, exif=_with_orientation(6))
    notes: list[str] = []
    image = read_image(path, notes=notes)
    assert image.shape == (crop.shape[1], crop.shape[0], 3)
    error = np.abs(image.astype(int) - np.rot90(crop, -1)).mean()
    assert error < 3 < np.abs(image.astype(int) - np.rot90(crop, 1)).mean()  # clockwise, not the other way
    assert notes == ["EXIF orientation 6 applied (rotated 90 degrees clockwise)"]


# What the EXIF specification says each orientation asks a viewer to do, written out independently of Pillow.
@pytest.mark.parametrize(
    "orientation, display",
    [
        (1, lambda a: a),
        (2, np.fliplr),
        (3, lambda a: np.rot90(a, 2)),
        (4, np.flipud),
        (5, lambda a: np.rot90(np.fliplr(a), 1)),
        (6, lambda a: np.rot90(a, -1)),
        (7, lambda a: np.rot90(np.fliplr(a), -1)),
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_every_orientation_is_applied_exactly(tmp_path, crop, orientation, display):
    path = tmp_path / "oriented.png"
    Image.fromarray(crop).save(path, exif=_with_orientation(orientation))
    notes: list[str] = []
    assert np.array_equal(read_image(path, notes=notes), display(crop))
    assert len(notes) == (orientation != 1)
    assert all(note.startswith(f"EXIF orientation {orientation} applied (") for note in notes)


def test_no_exif_gives_no_note(tmp_path, crop):
    path = tmp_path / "plain.jpg"
    Image.fromarray(crop).save(path)
    notes: list[str] = []
    read_image(path, notes=notes)
    assert notes == []


# --- ICC profiles ------------------------------------------------------------------------------------------


@needs_littlecms
def test_hand_built_profile_is_what_littlecms_reads():
    profile = ImageCms.ImageCmsProfile(io.BytesIO(ADOBE_RGB))
    assert ImageCms.getProfileDescription(profile).strip() == "Adobe-like RGB"
    assert profile.profile.xcolor_space == "RGB "


@needs_littlecms
def test_wide_gamut_profile_is_converted_to_srgb(tmp_path, crop):
    path = tmp_path / "adobe.png"
    Image.fromarray(crop).save(path, icc_profile=ADOBE_RGB)
    notes: list[str] = []
    image = read_image(path, notes=notes)
    assert image.shape == crop.shape and not np.array_equal(image, crop)
    # The same numbers mean more saturated colours in a wider gamut, so in sRGB they must spread further apart.
    assert _chroma(image) > 1.1 * _chroma(crop)
    assert notes == ["ICC profile 'Adobe-like RGB' converted to sRGB (relative colorimetric)"]


@needs_littlecms
def test_jpeg_with_profile_and_orientation_gets_both(tmp_path, crop):
    path = tmp_path / "phone.jpg"
    Image.fromarray(crop).save(path, quality=95, icc_profile=ADOBE_RGB, exif=_with_orientation(8))
    notes: list[str] = []
    image = read_image(path, notes=notes)
    assert image.shape == (crop.shape[1], crop.shape[0], 3)
    assert [note.split(" ")[0] for note in notes] == ["EXIF", "ICC"]


@needs_littlecms
@pytest.mark.parametrize(
    "mode, profile, name", [("L", GRAY_22, "Gray gamma 2.2"), ("P", ADOBE_RGB, "Adobe-like RGB")]
)  # a gray palette PNG
def test_gray_with_a_profile_is_converted_and_stays_gray(tmp_path, mode, profile, name):
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    path = tmp_path / "gray-profiled.png"
    Image.fromarray(ramp).convert(mode).save(path, icc_profile=profile)
    notes: list[str] = []
    image = read_image(path, notes=notes)
    assert image.shape == ramp.shape
    # Gamma 2.2 is darker than sRGB's curve in the shadows (sRGB has a linear toe); black and white stay put.
    assert image[0, 0] == 0 and image[0, 255] == 255 and image[0, 32] < 32 - 3
    assert notes == [f"ICC profile {name!r} converted to sRGB (relative colorimetric)"]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_srgb_profile_is_left_as_is(tmp_path, crop, suffix):
    path = tmp_path / f"srgb{suffix}"
    Image.fromarray(crop).save(path, icc_profile=_srgb_bytes())
    with Image.open(path) as img:
        expected = np.asarray(img.convert("RGB"))
    notes: list[str] = []
    assert np.array_equal(read_image(path, notes=notes), expected)
    assert notes == []


@needs_littlecms
@pytest.mark.parametrize(
    "profile, match",
    [
        (b"not an ICC profile at all" * 8, "ICC profile cannot be read"),
        (ADOBE_RGB[:200], "ICC profile cannot be read"),
        (GRAY_22, "ICC profile is for GRAY data but the image is RGB"),
    ],
)
def test_unusable_profiles_are_refused(tmp_path, crop, profile, match):
    path = tmp_path / "bad-profile.png"
    Image.fromarray(crop).save(path, icc_profile=profile)
    with pytest.raises(ImageInputError, match=match) as caught:
        read_image(path)
    assert "\n" not in str(caught.value)


def test_without_littlecms_only_srgb_profiles_are_accepted(tmp_path, crop, monkeypatch):
    monkeypatch.setattr(image_io, "HAVE_LITTLECMS", False)
    srgb, adobe = tmp_path / "srgb.png", tmp_path / "adobe.png"
    Image.fromarray(crop).save(srgb, icc_profile=_srgb_bytes())
    Image.fromarray(crop).save(adobe, icc_profile=ADOBE_RGB)
    assert np.array_equal(read_image(srgb), crop)
    with pytest.raises(ImageInputError, match="lacks littlecms2"):
        read_image(adobe)


# --- animation and multi-frame files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, message",
    [
        (".gif", "animated image with 2 frames; kdic codes still images (extract a frame first)"),
        (".png", "animated image with 2 frames; kdic codes still images (extract a frame first)"),
        (".webp", "animated image with 2 frames; kdic codes still images (extract a frame first)"),
        (".tiff", "multi-page TIFF with 2 pages; kdic codes still images (extract a page first)"),
    ],
)
def test_multi_frame_inputs_are_refused(tmp_path, crop, suffix, message):
    if suffix == ".webp" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    path = tmp_path / f"animated{suffix}"
    first, second = Image.fromarray(crop), Image.fromarray(255 - crop)
    first.save(path, save_all=True, append_images=[second])
    with pytest.raises(ImageInputError) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: {message}"


def test_mpo_reads_the_primary_image_with_a_note(tmp_path, crop):
    path = tmp_path / "camera.jpg"
    Image.fromarray(crop).save(
        path, format="MPO", quality=95, save_all=True, append_images=[Image.fromarray(255 - crop)]
    )
    notes: list[str] = []
    image = read_image(path, notes=notes)
    assert np.abs(image.astype(int) - crop).mean() < 3
    assert notes == ["MPO file with 2 images: the primary (first) one is read"]


# --- grayscale in, grayscale out ---------------------------------------------------------------------------


def test_gray_png_reads_as_2d_and_round_trips_exactly(tmp_path, crop):
    gray = np.ascontiguousarray(crop[..., 0])
    source, copy = tmp_path / "gray.png", tmp_path / "copy.png"
    Image.fromarray(gray).save(source)
    image = read_image(source)
    assert image.shape == gray.shape and image.dtype == np.uint8 and np.array_equal(image, gray)
    write_png(image, copy)
    with Image.open(copy) as written:
        assert written.mode == "L" and np.array_equal(np.asarray(written), gray)


def test_gray_with_alpha_and_gray_palette_read_as_2d(tmp_path, crop):
    gray = np.ascontiguousarray(crop[..., 0])
    la, palette = tmp_path / "la.png", tmp_path / "palette.png"
    Image.fromarray(np.dstack([gray, np.full_like(gray, 255)])).save(la)
    Image.fromarray(gray).convert("P").save(palette)
    assert _mode(palette) == "P"
    assert np.array_equal(read_image(la), gray)
    assert np.array_equal(read_image(palette), gray)


def test_one_bit_image_reads_as_2d_0_or_255(tmp_path, crop):
    path = tmp_path / "bilevel.png"
    Image.fromarray(crop[..., 0] > 128).save(path)
    assert _mode(path) == "1"
    image = read_image(path)
    assert image.shape == crop.shape[:2]
    assert np.array_equal(image, np.where(crop[..., 0] > 128, 255, 0).astype(np.uint8))


def test_write_png_writes_rgb_and_refuses_other_shapes(tmp_path, crop):
    path = tmp_path / "rgb.png"
    write_png(crop, path)
    with Image.open(path) as written:
        assert written.mode == "RGB" and np.array_equal(np.asarray(written), crop)
    with pytest.raises(ValueError, match="uint8"):
        write_png(crop.astype(np.float32), path)
