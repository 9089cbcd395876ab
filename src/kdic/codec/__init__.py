"""The real codec: container format, image I/O, encode/decode pipeline."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the real names for type checkers; at run time each loads on first use
    from .bitstream import MAX_PIXELS, Header, pack, unpack
    from .image_io import IMAGE_SUFFIXES, read_image, write_png
    from .pipeline import CodingReport, decode_bytes, encode_image


_EXPORTS = {
    "MAX_PIXELS": ".bitstream",
    "Header": ".bitstream",
    "pack": ".bitstream",
    "unpack": ".bitstream",
    "IMAGE_SUFFIXES": ".image_io",
    "read_image": ".image_io",
    "write_png": ".image_io",
    "CodingReport": ".pipeline",
    "decode_bytes": ".pipeline",
    "encode_image": ".pipeline",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
