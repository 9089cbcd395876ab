"""Entropy coding with constriction: quantized entropy parameters, range coder streams.

Why quantize: the decoder recomputes every entropy parameter from already-decoded data, and
floating-point results differ with thread counts and libraries. So (1) entropy-parameter networks
run single-threaded on both sides (``fixed_threads``), and (2) scales are snapped to a fixed table
and means to a fixed grid before use, so the coder only ever sees values from a finite set that
both sides agree on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import Tensor

SCALE_TABLE = torch.exp(torch.linspace(np.log(0.11), np.log(256.0), 64, dtype=torch.float64)).float()
MEAN_STEP = 1.0 / 64  # means are snapped to multiples of this before coding
SYMBOL_LIMIT = 255  # residual symbols are clamped to [-SYMBOL_LIMIT, SYMBOL_LIMIT]
_GAUSSIAN = constriction.stream.model.QuantizedGaussian(-SYMBOL_LIMIT, SYMBOL_LIMIT)
_TABLE64 = SCALE_TABLE.double().numpy()


@contextlib.contextmanager
def fixed_threads(count: int = 1) -> Iterator[None]:
    """Run torch with ``count`` intra-op threads so both codec sides compute bit-identical floats."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Geometric midpoints of the table: bucketizing against them picks the nearest entry in log scale by
# exact comparisons (no log, whose last bit may differ between machines).
SCALE_MIDPOINTS = torch.sqrt(SCALE_TABLE[:-1].double() * SCALE_TABLE[1:].double()).float()


@dataclass(frozen=True)
class CodingGrid:
    """How a family snaps entropy parameters before coding: scales up to the next table entry or to
    the nearest one (log scale), means to multiples of ``mean_step``."""

    nearest_scale: bool = False
    mean_step: float = MEAN_STEP


# The first families shipped with ``ROUND_UP``, and their files must keep decoding; families added
# since code with ``NEAREST``: rounding scales up costs ~2% over the estimated bits, the nearest entry
# and a 1/256 mean grid ~0.2% (measured on the CompressAI conformance fixtures).
ROUND_UP = CodingGrid()
NEAREST = CodingGrid(nearest_scale=True, mean_step=1.0 / 256)
CODING_GRIDS = {"round-up": ROUND_UP, "nearest": NEAREST}


def quantize_parameters(scales: Tensor, means: Tensor, grid: CodingGrid = ROUND_UP) -> tuple[Tensor, Tensor]:
    """(scale-table indexes, grid means): the only entropy parameters the coder ever sees."""
    edges = SCALE_MIDPOINTS if grid.nearest_scale else SCALE_TABLE
    indexes = torch.bucketize(scales.float(), edges).clamp_(max=len(SCALE_TABLE) - 1)
    return indexes, torch.round(means / grid.mean_step) * grid.mean_step


def residual_symbols(y: Tensor, means: Tensor) -> Tensor:
    """Integer symbols round(y - mean), clamped into the coder's range."""
    return torch.round(y - means).clamp_(-SYMBOL_LIMIT, SYMBOL_LIMIT)


def _decode_checked(decode) -> np.ndarray:
    """constriction signals invalid compressed data with assertion/key errors; make it a ValueError."""
    try:
        return decode()
    except (AssertionError, KeyError, RuntimeError) as exc:
        raise ValueError(f"invalid compressed data: {exc}") from None


class StreamEncoder:
    """One range-coded stream (the y or the z of one latent), symbols appended in decode order."""

    def __init__(self) -> None:
        self._encoder = constriction.stream.queue.RangeEncoder()
        self.symbols = 0

    def code(self, symbols: Tensor | None, indexes: Tensor) -> Tensor:
        """Residuals under zero-mean quantized Gaussians with table scales; returns ``symbols``."""
        assert symbols is not None  # the encoder side always has the symbols (SymbolCoder allows None)
        values = symbols.reshape(-1).to(torch.int32).numpy()
        if values.size:
            stds = _TABLE64[indexes.reshape(-1).numpy()]
            self._encoder.encode(values, _GAUSSIAN, np.zeros_like(stds), stds)
        self.symbols += values.size
        return symbols

    def categorical(self, symbols: np.ndarray, probabilities: np.ndarray) -> None:
        """Symbols that share one PMF (one channel of z): one model, not one table row per symbol."""
        if symbols.size:
            self._encoder.encode(
                symbols.astype(np.int32), constriction.stream.model.Categorical(probabilities, perfect=False)
            )
        self.symbols += symbols.size

    def finish(self) -> bytes:
        return self._encoder.get_compressed().tobytes()


class StreamDecoder:
    """Decoder counterpart of ``StreamEncoder``; ``finish`` refuses a stream with data left over."""

    def __init__(self, data: bytes, what: str) -> None:
        if len(data) % 4:
            raise ValueError(f"{what} stream length is not a multiple of 4 bytes")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
        self.what = what
        self.symbols = 0

    def code(self, symbols: Tensor | None, indexes: Tensor) -> Tensor:
        """The next symbols under the Gaussians ``indexes`` name (``symbols`` is the encoder's; unused)."""
        flat = indexes.reshape(-1).numpy()
        if flat.size == 0:
            return torch.zeros(indexes.shape)
        stds = _TABLE64[flat]
        values = _decode_checked(lambda: self._decoder.decode(_GAUSSIAN, np.zeros_like(stds), stds))
        self.symbols += flat.size
        return torch.from_numpy(values.astype(np.float32)).view(indexes.shape)

    def categorical(self, count: int, probabilities: np.ndarray) -> np.ndarray:
        model = constriction.stream.model.Categorical(probabilities, perfect=False)
        self.symbols += count
        return _decode_checked(lambda: self._decoder.decode(model, count)) if count else np.zeros(0, np.int32)

    def finish(self) -> None:
        """A stream must be consumed exactly: left-over data means the header does not fit the streams."""
        if not self._decoder.maybe_exhausted():
            raise ValueError(f"the {self.what} stream holds more data than the image needs")


@dataclass(frozen=True)
class FactorizedTables:
    """Per-channel PMFs of the factorized prior over its integer support [-minima, maxima] + median."""

    medians: Tensor  # (C,)
    minima: Tensor  # (C,) int64
    maxima: Tensor  # (C,) int64
    probabilities: np.ndarray  # (C, L) float64, zero beyond each channel's support

    def symbols(self, z: Tensor) -> Tensor:
        """Channel-wise offset symbols in [0, minima + maxima] (values beyond the support are clamped)."""
        med = self.medians.view(1, -1, 1, 1)
        offset = torch.round(z - med)
        offset = torch.maximum(
            torch.minimum(offset, self.maxima.view(1, -1, 1, 1).float()), -self.minima.view(1, -1, 1, 1).float()
        )
        return offset + self.minima.view(1, -1, 1, 1).float()

    def values(self, symbols: Tensor) -> Tensor:
        return symbols - self.minima.view(1, -1, 1, 1).float() + self.medians.view(1, -1, 1, 1)

    def encode(self, coder: StreamEncoder, symbols: Tensor) -> None:
        """Append (B, C, h, w) symbols, image by image and channel by channel, each under its PMF."""
        flat = symbols.to(torch.int32).flatten(2).numpy()
        for image in flat:
            for channel, values in enumerate(image):
                coder.categorical(values, self.probabilities[channel])

    def decode(self, coder: StreamDecoder, shape: torch.Size) -> Tensor:
        """Inverse of ``encode``; memory is sized by the tile, never by the header's claims alone."""
        b, c, h, w = shape
        values = np.stack(
            [
                np.stack([coder.categorical(h * w, self.probabilities[channel]) for channel in range(c)])
                for _ in range(b)
            ]
        )
        return torch.from_numpy(values.astype(np.float32)).view(shape)
