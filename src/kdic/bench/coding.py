"""Entropy-coding throughput of kdic's range coder path (symbols per second)."""

from __future__ import annotations

import time

import torch

from ..entropy.coder import SCALE_TABLE, StreamDecoder, StreamEncoder


def coding_throughput(num_symbols: int = 1_000_000, chunk: int = 50_000, seed: int = 0) -> dict[str, float]:
    """Encode then decode ``num_symbols`` Gaussian residuals in vectorized chunks (as a latent group is coded).

    Scales are spread over the whole table; symbols are drawn from the matching Gaussians.
    """
    generator = torch.Generator().manual_seed(seed)
    indexes = torch.randint(0, len(SCALE_TABLE), (num_symbols,), generator=generator)
    symbols = torch.round(torch.randn(num_symbols, generator=generator) * SCALE_TABLE[indexes]).clamp(-255, 255)
    encoder = StreamEncoder()
    start = time.perf_counter()
    for i in range(0, num_symbols, chunk):
        encoder.code(symbols[i : i + chunk], indexes[i : i + chunk])
    data = encoder.finish()
    encode_seconds = time.perf_counter() - start
    decoder = StreamDecoder(data, "y")
    start = time.perf_counter()
    decoded = torch.cat([decoder.code(None, indexes[i : i + chunk]) for i in range(0, num_symbols, chunk)])
    decode_seconds = time.perf_counter() - start
    if not torch.equal(decoded, symbols):
        raise RuntimeError("range coder round trip failed")
    return {
        "symbols": num_symbols,
        "bits_per_symbol": 8 * len(data) / num_symbols,
        "encode_symbols_per_s": num_symbols / encode_seconds,
        "decode_symbols_per_s": num_symbols / decode_seconds,
    }
