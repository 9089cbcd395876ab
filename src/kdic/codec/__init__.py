"""The real codec: container format, image I/O, encode/decode pipeline."""

from .bitstream import MAX_PIXELS, Header, pack, unpack
from .image_io import IMAGE_SUFFIXES, read_image, write_png
from .pipeline import CodingReport, decode_bytes, encode_image

__all__ = ["CodingReport", "Header", "IMAGE_SUFFIXES", "MAX_PIXELS", "decode_bytes", "encode_image", "pack",
           "read_image", "unpack", "write_png"]
