"""Rate-distortion curves from any result file, and Bjontegaard deltas between them.

A curve is named ``FILE`` (CompressAI-format results, as ``kdic eval`` writes, or a plain
``{"bpp": [...], "psnr": [...]}``) or ``FILE#dataset/method`` (selector into a nested anchor file
such as ``../shared/data/anchors/summary_psnr_rgb.json#kodak/compressai/vtm``).
BD-rate integrates log-rate over the overlapping quality interval (VCEG-M33); the interpolation
is ``pchip`` (default), ``cubic`` (the classic polynomial fit) or ``akima``, via the ``bjontegaard``
package.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import KdicError
from ..fileio import read_json

METHODS = ("pchip", "cubic", "akima")
LOW_OVERLAP = 0.5
_ALIASES = {"psnr-rgb": ("psnr-rgb", "psnr_rgb", "psnr"), "ms-ssim-rgb": ("ms-ssim-rgb", "ms_ssim_rgb", "ms-ssim")}
METRICS = tuple(_ALIASES)


@dataclass(frozen=True)
class Curve:
    name: str
    bpp: tuple[float, ...]
    quality: tuple[float, ...]
    metric: str = "psnr-rgb"

    def __post_init__(self) -> None:
        if len(self.bpp) != len(self.quality) or len(self.bpp) < 2:
            raise KdicError(f"curve {self.name!r} needs at least two (bpp, {self.metric}) points")

    def scaled_rate(self, factor: float, name: str | None = None) -> Curve:
        return Curve(name or self.name, tuple(b * factor for b in self.bpp), self.quality, self.metric)


def _pick(block: dict, metric: str, where: str) -> Curve:
    results = block.get("results", block)
    quality = next((results[k] for k in _ALIASES.get(metric, (metric,)) if k in results), None)
    if "bpp" not in results or quality is None:
        raise KdicError(f"{where}: no 'bpp' and '{metric}' lists")
    points = sorted((float(b), float(q)) for b, q in zip(results["bpp"], quality) if b is not None and q is not None)
    name = block.get("name") or block.get("note") or where
    return Curve(str(name), tuple(p[0] for p in points), tuple(p[1] for p in points), metric)


def load_curve(spec: str | Path, metric: str = "psnr-rgb") -> Curve:
    """Read a curve from ``FILE`` or ``FILE#key/sub/key`` (see the module docstring)."""
    path_text, _, selector = str(spec).partition("#")
    path = Path(path_text)
    data = read_json(path, "curve file", KdicError)
    if selector:
        dataset, _, method = selector.partition("/")
        try:
            data = data[dataset][method] if method else data[dataset]
        except (KeyError, TypeError):
            raise KdicError(f"{path}: no entry {selector!r}") from None
        data = {**data, "name": data.get("name") or data.get("note") or selector}
    return _pick(data, metric, str(spec))


def overlap(a: Curve, b: Curve, axis: str = "quality") -> float:
    """Shared interval on ``axis`` ("quality" or "bpp") as a fraction of the narrower curve's interval."""
    va, vb = getattr(a, axis), getattr(b, axis)
    low, high = max(min(va), min(vb)), min(max(va), max(vb))
    narrow = min(max(va) - min(va), max(vb) - min(vb))
    return max(0.0, high - low) / narrow if narrow > 0 else 0.0


def _check(test: Curve, anchor: Curve, axis: str) -> None:
    """BD-rate integrates over quality, BD-quality over rate: the curves must share that axis."""
    if test.metric != anchor.metric:
        raise KdicError(f"curves measure different qualities: {test.metric} vs {anchor.metric}")
    shared = overlap(test, anchor, axis)
    what = test.metric if axis == "quality" else "bpp"
    if shared == 0:
        raise KdicError(f"curves {test.name!r} and {anchor.name!r} do not overlap in {what}")
    if shared < LOW_OVERLAP:
        warnings.warn(
            f"curves {test.name!r} and {anchor.name!r} overlap on only {100 * shared:.0f}% of the "
            f"narrower {what} range; the BD numbers extrapolate little but cover little",
            stacklevel=3,
        )


def bd_rate(test: Curve, anchor: Curve, method: str = "pchip") -> float:
    """Average bitrate difference (%) of ``test`` against ``anchor`` at equal quality (negative = saving)."""
    _check(test, anchor, "quality")
    return _bjontegaard("bd_rate", test, anchor, method)


def bd_quality(test: Curve, anchor: Curve, method: str = "pchip") -> float:
    """Average quality difference (dB for PSNR) of ``test`` against ``anchor`` at equal rate."""
    _check(test, anchor, "bpp")
    return _bjontegaard("bd_psnr", test, anchor, method)


def _bjontegaard(function: str, test: Curve, anchor: Curve, method: str) -> float:
    import bjontegaard  # pulls scipy: imported when a number is asked for, not when the CLI lists METHODS

    return float(
        getattr(bjontegaard, function)(
            np.array(anchor.bpp),
            np.array(anchor.quality),
            np.array(test.bpp),
            np.array(test.quality),
            method=method,
            require_matching_points=False,
            min_overlap=0.0,
        )
    )
