"""How closely an imported model reproduces its peer: the measures ``tests/test_import.py`` bounds
and ``scripts/conformance_report.py`` reports, on outputs the peer's own code computed."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..models import LearnedImageCodec


def _psnr(a: Tensor, b: Tensor) -> float:
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


@torch.no_grad()
def compare(
    model: LearnedImageCodec, expected: dict[str, Tensor], estimated_bits: float | None = None
) -> dict[str, float]:
    """Errors against the peer's tensors: ``x`` (input), ``y`` = g_a(x), and either the eval-mode
    forward (``x_hat``, ``likelihoods_y``, ``likelihoods_z``) with its decoded image
    (``x_hat_decoded``), or, for a transforms-only fixture, ``x_hat`` = g_s(round(y))."""
    x = expected["x"]
    y = model.g_a(x)
    report = {"y_max_abs": float((y - expected["y"]).abs().max())}
    if "likelihoods_y" not in expected:
        report["x_hat_max_abs"] = float((model.g_s(torch.round(y)) - expected["x_hat"]).abs().max())
        return report
    out = model(x)
    report["x_hat_max_abs"] = float((out["x_hat"] - expected["x_hat"]).abs().max())
    for name in ("y", "z"):
        peer = expected[f"likelihoods_{name}"]
        report[f"likelihoods_{name}_max_rel"] = float(((out["likelihoods"][name] - peer).abs() / peer).max())
    coded = model.compress(x)
    decoded = model.decompress(coded["strings"], coded["shape"])["x_hat"]
    report["coded_psnr_minus_peer_db"] = _psnr(decoded, x) - _psnr(expected["x_hat_decoded"], x)
    report["coded_bits"] = 8 * sum(len(s) for streams in coded["strings"] for s in streams)
    if estimated_bits is not None:
        report["coded_bits_over_peer_estimate"] = report["coded_bits"] / estimated_bits - 1
    return report
