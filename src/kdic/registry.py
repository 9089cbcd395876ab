"""Named extension points (block kinds, resamplers, latent-codec families, rate methods, phase losses).

A new kind of thing is one new module that calls ``REGISTRY.register(name, entry)`` at import
time; every consumer looks the name up here instead of branching on types, as timm and
CompressAI do with their model registries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar, cast

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> entry table; unknown names are a one-line ``ConfigError``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: object) -> T:
        """The entry called ``name``; any other value (a config's unchecked field) is a ConfigError."""
        try:
            return self._entries[cast(str, name)]  # a non-str misses (KeyError) or is unhashable (TypeError)
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.what} {str(name)[:80]!r}; known: {', '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self):
        return self._entries.items()
