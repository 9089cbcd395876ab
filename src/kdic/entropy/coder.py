"""Entropy coding with constriction: quantized entropy parameters, range coder streams.

Why quantize: the decoder recomputes every entropy parameter from already-decoded data, and
floating-point results differ with thread counts and libraries. So (1) entropy-parameter networks
run single-threaded on both sides (``fixed_threads``), and (2) scales are snapped to a fixed table
and means to a fixed grid before use, so the coder only ever sees values from a finite set that
both sides agree on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import constriction
import numpy as np
import torch
from torch import Tensor

SCALE_TABLE = torch.exp(torch.linspace(np.log(0.11), np.log(256.0), 64, dtype=torch.float64)).float()
MEAN_STEP = 1.0 / 64  # means are snapped to multiples of this before coding
SYMBOL_LIMIT = 255  # residual symbols are clamped to [-SYMBOL_LIMIT, SYMBOL_LIMIT]
_GAUSSIAN = constriction.stream.model.QuantizedGaussian(-SYMBOL_LIMIT, SYMBOL_LIMIT)
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
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


def quantize_parameters(scales: Tensor, means: Tensor) -> tuple[Tensor, Tensor]:
    """(scale-table indexes, grid means): the only entropy parameters the coder ever sees."""
    indexes = torch.bucketize(scales.float(), SCALE_TABLE).clamp_(max=len(SCALE_TABLE) - 1)
    return indexes, torch.round(means / MEAN_STEP) * MEAN_STEP


def residual_symbols(y: Tensor, means: Tensor) -> Tensor:
    """Integer symbols round(y - mean), clamped into the coder's range."""
    return torch.round(y - means).clamp_(-SYMBOL_LIMIT, SYMBOL_LIMIT)


def _decode_checked(decode) -> np.ndarray:
    """constriction signals invalid compressed data with assertion/key errors; make it a ValueError."""
    try:
        return decode()
    except (AssertionError, KeyError, RuntimeError) as exc:
        raise ValueError(f"invalid compressed data: {exc}") from None


class GaussianStreamEncoder:
    """Range-coded residuals under zero-mean quantized Gaussians with table scales."""

    def __init__(self) -> None:
        self._encoder = constriction.stream.queue.RangeEncoder()
        self.symbols = 0

    def code(self, symbols: Tensor, indexes: Tensor) -> Tensor:
        values = symbols.reshape(-1).to(torch.int32).numpy()
        if values.size:
            stds = _TABLE64[indexes.reshape(-1).numpy()]
            self._encoder.encode(values, _GAUSSIAN, np.zeros_like(stds), stds)
        self.symbols += values.size
        return symbols

    def finish(self) -> bytes:
        return self._encoder.get_compressed().tobytes()


class GaussianStreamDecoder:
    """Decoder counterpart of ``GaussianStreamEncoder``; ``code`` returns the next symbols."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise ValueError("range-coder stream length is not a multiple of 4 bytes")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
        self.symbols = 0

    def code(self, symbols: Tensor | None, indexes: Tensor) -> Tensor:
        flat = indexes.reshape(-1).numpy()
        if flat.size == 0:
            return torch.zeros(indexes.shape)
        stds = _TABLE64[flat]
        values = _decode_checked(lambda: self._decoder.decode(_GAUSSIAN, np.zeros_like(stds), stds))
        self.symbols += flat.size
        return torch.from_numpy(values.astype(np.float32)).view(indexes.shape)


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
        offset = torch.maximum(torch.minimum(offset, self.maxima.view(1, -1, 1, 1).float()),
                               -self.minima.view(1, -1, 1, 1).float())
        return offset + self.minima.view(1, -1, 1, 1).float()

    def values(self, symbols: Tensor) -> Tensor:
        return symbols - self.minima.view(1, -1, 1, 1).float() + self.medians.view(1, -1, 1, 1)

    def _rows(self, shape: torch.Size) -> np.ndarray:
        channel = torch.arange(shape[1]).view(1, -1, 1, 1).expand(shape).reshape(-1).numpy()
        return self.probabilities[channel]

    def encode(self, symbols: Tensor) -> bytes:
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols.reshape(-1).to(torch.int32).numpy(), _CATEGORICAL, self._rows(symbols.shape))
        return encoder.get_compressed().tobytes()

    def decode(self, data: bytes, shape: torch.Size) -> Tensor:
        if len(data) % 4:
            raise ValueError("range-coder stream length is not a multiple of 4 bytes")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
        values = _decode_checked(lambda: decoder.decode(_CATEGORICAL, self._rows(shape)))
        return torch.from_numpy(values.astype(np.float32)).view(shape)
