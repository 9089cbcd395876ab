"""Reading images into 8-bit RGB explicitly, and writing PNGs atomically."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageInputError
from ..fileio import atomic_write
from .bitstream import MAX_PIXELS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses larger images before decoding them


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(25)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 25:
        return head[24]
    return None


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Grayscale and palette are expanded; alpha is dropped with a warning;
    16-bit and float images are refused (kdic codes 8-bit RGB)."""
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            if img.mode in ("I", "F") or img.mode.startswith("I;16") or _png_bit_depth(path) == 16:
                raise ImageInputError(f"{path}: {img.mode if img.mode != 'RGB' else '16-bit RGB'} images are not "
                                      "supported; convert to 8-bit RGB first")
            if img.width * img.height > MAX_PIXELS:
                raise ImageInputError(f"{path}: {img.width}x{img.height} exceeds the limit of {MAX_PIXELS} pixels")
            has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info)
            if has_alpha:
                alpha = np.asarray(img.convert("RGBA"))[..., 3]
                if (alpha < 255).any():
                    warnings.warn(f"{path}: alpha channel dropped (kdic codes RGB only)", stacklevel=2)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except ImageInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(f"{path}: cannot decode image ({exc})") from None


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Write an (H, W, 3) uint8 array as PNG via a temp file and rename."""
    atomic_write(path, lambda tmp: Image.fromarray(image, "RGB").save(tmp, format="PNG"))
