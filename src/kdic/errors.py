"""Exceptions that the CLI turns into one-line messages instead of tracebacks."""


class KdicError(Exception):
    """Base class for every error kdic reports to a user."""


class ConfigError(KdicError, ValueError):
    """A model or run configuration is invalid (unknown preset, impossible widths, ...)."""


class CheckpointError(KdicError):
    """A weights file cannot be read or does not match the model it describes."""


class BitstreamError(KdicError):
    """A .kdic file is malformed, corrupted, or was made with other weights."""


class ImageInputError(KdicError):
    """An input image cannot be read or is of an unsupported kind (e.g. 16-bit)."""
