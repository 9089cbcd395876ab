"""Shared real-coding procedure of the hyperprior latent codecs.

A latent codec describes one decode order in ``code_y``; compression and decompression both walk
it, differing only in the ``coder`` (which encodes the encoder's symbols, or decodes them). So
the two sides cannot drift apart structurally. ``ParameterPath`` says how they compute the
entropy parameters: in ``exact_arithmetic`` (format 3 on: the same bits on every machine and thread
count) or, for files of formats 1 and 2, in float32 on one thread (the same bits only where the
encoder's CPU computed them); and from format 4 on ``packed``: pointwise parameter networks see only
the positions being coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import Tensor, nn

from .bottleneck import EntropyBottleneck
from .coder import StreamDecoder, StreamEncoder, fixed_threads
from .exact import exact_arithmetic


class SymbolCoder(Protocol):
    def code(self, symbols: Tensor | None, indexes: Tensor) -> Tensor: ...


HYPER_STRIDE = 4  # z is y down-sampled twice


@dataclass(frozen=True)
class ParameterPath:
    """How both sides compute the entropy parameters of y; ``kdic.codec.bitstream.parameter_path`` gives a
    format version's. The defaults are what kdic writes."""

    exact: bool = True  # order-independent arithmetic (format 3 on); else float32 on one thread
    packed: bool = True  # a family's pointwise parameter networks run on the coded positions only (format 4 on)


NEWEST = ParameterPath()


class HyperpriorLatentCodec(nn.Module):
    """Base: z with a factorized prior, side parameters from z_hat, y coded in ``code_y`` order."""

    entropy_bottleneck: EntropyBottleneck
    h_a: nn.Module

    def hyper_input(self, y: Tensor) -> Tensor:
        """What h_a reads (Balle's scale hyperprior reads |y|)."""
        return y

    def side_params(self, z_hat: Tensor) -> Any:
        raise NotImplementedError

    def code_y(
        self, side: Any, y_shape: tuple[int, int, int, int], coder: SymbolCoder, y: Tensor | None, packed: bool
    ) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def compress(self, y: Tensor, path: ParameterPath = NEWEST) -> dict:
        """Entropy-code one latent (batch 1): strings [y, z], y_hat as the decoder will see it."""
        tables = self.entropy_bottleneck.coding_tables()
        z_symbols = tables.symbols(self.h_a(self.hyper_input(y)))
        y_stream, z_stream = StreamEncoder(), StreamEncoder()
        tables.encode(z_stream, z_symbols)
        with exact_arithmetic() if path.exact else fixed_threads():
            y_shape = cast(tuple[int, int, int, int], tuple(y.shape))  # one (1, C, H, W) latent
            y_hat = self.code_y(self.side_params(tables.values(z_symbols)), y_shape, y_stream, y, path.packed)
        return {
            "strings": [y_stream.finish(), z_stream.finish()],
            "y_hat": y_hat.float(),
            "symbols": y_stream.symbols + z_stream.symbols,
        }

    @torch.no_grad()
    def decompress(
        self, strings: list[bytes], y_shape: tuple[int, int, int, int], path: ParameterPath = NEWEST
    ) -> dict:
        """Inverse of ``compress``; raises ValueError on streams that cannot be parsed or are not used up."""
        b, _, h, w = y_shape
        tables = self.entropy_bottleneck.coding_tables()
        y_stream, z_stream = StreamDecoder(strings[0], "y"), StreamDecoder(strings[1], "z")
        z_shape = torch.Size((b, tables.medians.numel(), h // HYPER_STRIDE, w // HYPER_STRIDE))
        z_hat = tables.values(tables.decode(z_stream, z_shape))
        z_stream.finish()
        with exact_arithmetic() if path.exact else fixed_threads():
            y_hat = self.code_y(self.side_params(z_hat), y_shape, y_stream, None, path.packed)
        y_stream.finish()
        return {"y_hat": y_hat.float(), "symbols": y_stream.symbols + z_stream.symbols}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.aux_loss()
