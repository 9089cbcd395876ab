"""Exceptions that the CLI turns into one-line messages instead of tracebacks."""


class KdicError(Exception):
    """Base class for every error kdic reports to a user."""


class ConfigError(KdicError, ValueError):
    """A model or run configuration is invalid (unknown preset, impossible widths, ...)."""


class CheckpointError(KdicError):
    """A weights file cannot be read or does not match the model it describes."""
