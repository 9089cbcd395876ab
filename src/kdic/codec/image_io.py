"""Reading images as the 8-bit sRGB (or gray) pixels a viewer would show, and writing PNGs atomically.

kdic codes still 8-bit pictures, so what a viewer displays is what gets coded: the EXIF orientation and
an embedded colour profile are applied (and said so in ``notes``), while what cannot be honoured
faithfully (animation, 16-bit samples, a profile that cannot be applied) is refused, never approximated.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError, features

from ..errors import BitstreamError, ImageInputError, KdicError
from ..fileio import atomic_write_file
from .bitstream import MAX_PIXELS, check_image_size

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses larger images before decoding them
HAVE_LITTLECMS = features.check("littlecms2")

# What each EXIF orientation makes a viewer do to the stored pixels (ImageOps.exif_transpose does the same).
_ORIENTATIONS = {
    2: "mirrored left to right",
    3: "rotated 180 degrees",
    4: "mirrored top to bottom",
    5: "mirrored left to right and rotated 90 degrees counter-clockwise",
    6: "rotated 90 degrees clockwise",
    7: "mirrored left to right and rotated 90 degrees clockwise",
    8: "rotated 90 degrees counter-clockwise",
}
_GRAY_MODES = ("1", "L", "LA", "La")
_PROFILE_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}  # ICC colour space -> Pillow mode it applies to


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (sorted, so every process sees the same order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KdicError(f"data folder {folder} does not exist")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise KdicError(f"data folder {folder} holds no images")
    return files


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(25)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 25:
        return head[24]
    return None


def _is_gray(img: Image.Image) -> bool:
    """Gray modes, and palettes whose used entries are all gray (a gray PNG saved as a palette)."""
    if img.mode in _GRAY_MODES:
        return True
    if img.mode not in ("P", "PA"):
        return False
    palette = np.asarray(img.getpalette("RGB"), np.uint8).reshape(-1, 3)
    used = np.flatnonzero(np.asarray(img.histogram()[:256])[: len(palette)])  # band 0 = palette indices
    return bool((palette[used] == palette[used, :1]).all())


def _keeps_values(transform: ImageCms.ImageCmsTransform, mode: str) -> bool:
    """Whether converting to sRGB moves no sampled value by more than one level, i.e. the profile is sRGB
    (under whatever name) and the stored pixels are kept bit-exact instead of being re-rounded."""
    if mode == "CMYK":
        return False
    if mode == "RGB":
        levels = np.arange(0, 256, 17, dtype=np.uint8)
        probe = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    else:
        probe = np.arange(256, dtype=np.uint8)[None]
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(probe), transform), np.int16)
    return int(np.abs(out - probe.reshape(1, probe.shape[1], -1)).max()) <= 1


def _apply_profile(path: Path, img: Image.Image, icc: bytes, gray: bool, notes: list[str]) -> np.ndarray | None:
    """Pixels converted from the embedded profile to sRGB, or None when the profile is sRGB already.

    Relative colorimetric intent: colours inside sRGB keep their exact appearance and only those outside
    are clipped, as browsers show such images; perceptual intent needs perceptual tables that matrix/TRC
    profiles (Display P3, Adobe RGB, most camera profiles) lack, so it would silently be colorimetric for
    some inputs and not for others. Black-point compensation maps a print profile's black onto sRGB black
    (a no-op for display profiles, whose black is already 0).
    """
    if not HAVE_LITTLECMS:  # profiles cannot be parsed; accept only those that call themselves sRGB
        if b"sRGB" in icc or "sRGB".encode("utf-16-be") in icc:
            return None
        raise ImageInputError(
            f"{path}: embedded ICC profile is not sRGB and this Pillow lacks littlecms2 "
            "to convert it; convert the image to sRGB first"
        )
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise ImageInputError(
            f"{path}: embedded ICC profile cannot be read ({exc}); strip it or convert the image to sRGB first"
        ) from None
    space = profile.profile.xcolor_space.strip()
    mode = _PROFILE_MODES.get(space)
    if mode is None or not {"RGB": img.mode != "CMYK", "L": gray, "CMYK": img.mode == "CMYK"}.get(mode, False):
        raise ImageInputError(
            f"{path}: embedded ICC profile is for {space} data but the image is {img.mode}; "
            "strip the profile or convert the image to sRGB first"
        )
    try:
        transform = ImageCms.buildTransform(
            profile,
            ImageCms.createProfile("sRGB"),
            mode,
            "RGB",
            ImageCms.Intent.RELATIVE_COLORIMETRIC,
            ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
        if _keeps_values(transform, mode):
            return None
        out = np.array(ImageCms.applyTransform(img.convert(mode), transform), dtype=np.uint8)
    except ImageCms.PyCMSError as exc:
        raise ImageInputError(f"{path}: embedded ICC profile cannot be converted to sRGB ({exc})") from None
    name = ImageCms.getProfileDescription(profile).strip() or "unnamed"
    notes.append(f"ICC profile {name!r} converted to sRGB (relative colorimetric)")
    if gray and int((out.max(-1) - out.min(-1)).max()) <= 1:  # still neutral, up to the matrices' rounding
        return out.mean(-1).round().astype(np.uint8)
    return out


def read_image(path: str | Path, *, notes: list[str] | None = None) -> np.ndarray:
    """Pixels as a viewer shows them: (H, W) uint8 for grayscale inputs ("1", "L", "LA", all-gray palettes),
    (H, W, 3) uint8 sRGB otherwise.

    The EXIF orientation is applied and a profile that is not sRGB is converted to sRGB, each with a line
    appended to ``notes``; alpha that is not opaque is dropped with a warning. Animated and multi-page
    images, 16-bit and float samples, and profiles that cannot be applied raise ImageInputError; of an MPO
    (a camera JPEG carrying extra previews) the primary image is read, with a note.
    """
    path = Path(path)
    notes = [] if notes is None else notes
    if not path.is_file():
        raise ImageInputError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            if img.mode in ("I", "F") or img.mode.startswith("I;16") or _png_bit_depth(path) == 16:
                raise ImageInputError(
                    f"{path}: {img.mode if img.mode != 'RGB' else '16-bit RGB'} images are not "
                    "supported; convert to 8-bit RGB first"
                )
            try:
                check_image_size(img.width, img.height)
            except BitstreamError as exc:
                raise ImageInputError(f"{path}: {exc}") from None
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format == "MPO":
                notes.append(f"MPO file with {frames} images: the primary (first) one is read")
            elif frames > 1 and img.format == "TIFF":
                raise ImageInputError(
                    f"{path}: multi-page TIFF with {frames} pages; kdic codes still images (extract a page first)"
                )
            elif frames > 1:
                raise ImageInputError(
                    f"{path}: animated image with {frames} frames; kdic codes still images (extract a frame first)"
                )
            icc = img.info.get("icc_profile")
            orientation = img.getexif().get(ExifTags.Base.Orientation)
            ImageOps.exif_transpose(img, in_place=True)
            if orientation in _ORIENTATIONS:
                notes.append(f"EXIF orientation {orientation} applied ({_ORIENTATIONS[orientation]})")
            has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
                img.mode == "P" and "transparency" in img.info
            )
            if has_alpha:
                alpha = np.asarray(img.convert("RGBA"))[..., 3]
                if (alpha < 255).any():
                    warnings.warn(f"{path}: alpha channel dropped (kdic codes RGB only)", stacklevel=2)
            gray = _is_gray(img)
            converted = _apply_profile(path, img, icc, gray, notes) if icc else None
            if converted is not None:
                return converted
            return np.array(img.convert("L" if gray else "RGB"), dtype=np.uint8)
    except ImageInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(f"{path}: cannot decode image ({exc})") from None


def write_png(image: np.ndarray, path: str | Path, exclusive: bool = False) -> None:
    """Write an (H, W) uint8 array as a gray ("L") PNG or an (H, W, 3) one as RGB, never half-written;
    ``exclusive`` refuses to replace a file that exists by then."""
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"write_png needs (H, W) or (H, W, 3) uint8, got {image.shape} {image.dtype}")
    picture = Image.fromarray(np.ascontiguousarray(image))
    atomic_write_file(path, lambda f: picture.save(f, format="PNG"), exclusive)
