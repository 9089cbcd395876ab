"""Rate control for variable-rate models: per image, the lambda that meets a bpp or PSNR target.

A root search in log-lambda on real coding (every pass writes the actual file), since both the real
rate and the PSNR grow with lambda: false position with the Illinois rule, on log-bpp (nearly linear
in log-lambda) or on PSNR, each trial strictly inside the bracket of a pass that met the target and
one that did not (scripts/target_rate.py measures the passes on Kodak). A bpp target is a budget
(the result is at or under it), a PSNR target a floor (at or over it); the search stops when a pass
lands within the target's tolerance, or after ``max_passes``, and returns the best pass that met the
target (or, if none can, the end of the lambda range closest to it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data import DEFAULT_QUALITY, quality_lmbda
from ..errors import ConfigError
from ..models import LearnedImageCodec
from .distortion import psnr_uint8
from .pipeline import CodingReport, encode_image
from .refine import check_refine_steps

MAX_PASSES = 12  # 2 ends + 10 searches (bisection alone would get lambda to 0.6% over 0.000569..0.178)


@dataclass(frozen=True)
class Target:
    """A quality or rate target: how to measure a pass, and which side of the target is acceptable."""

    unit: str
    measure: Callable[[np.ndarray, np.ndarray | None, CodingReport], float]
    budget: bool  # True: the value must stay at or under the target (rate); False: at or over it (quality)
    tolerance: Callable[[float], float]  # how far from the target a pass may land to stop early
    needs_reconstruction: bool
    axis: Callable[[float], float]  # where the value is about linear in log-lambda: the search interpolates there

    def meets(self, value: float, target: float) -> bool:
        return value <= target if self.budget else value >= target


def _psnr(image: np.ndarray, reconstruction: np.ndarray | None, _: CodingReport) -> float:
    assert reconstruction is not None  # the PSNR target needs_reconstruction
    return psnr_uint8(reconstruction, image)


TARGETS: dict[str, Target] = {
    "bpp": Target("bpp", lambda image, recon, report: report.bits_per_pixel, True, lambda t: 0.01 * t, False, math.log),
    "psnr": Target("dB", _psnr, False, lambda t: 0.02, True, float),
}


@dataclass
class TargetResult:
    """The chosen pass: its lambda, file, reconstruction and report; the measured value; the cost."""

    lmbda: float | None
    data: bytes
    reconstruction: np.ndarray | None
    report: CodingReport
    value: float
    passes: int
    met: bool


def code_at_target(
    model: LearnedImageCodec,
    image: np.ndarray,
    metric: str,
    target: float,
    max_passes: int = MAX_PASSES,
    reconstruct: bool = False,
    refine_steps: int = 0,
) -> TargetResult:
    """Code ``image`` at the lambda that meets ``target`` (``metric`` is a ``TARGETS`` key); every pass
    refines its latent ``refine_steps`` steps, so the search sees the file it will write."""
    if metric not in TARGETS:
        raise ConfigError(f"unknown target {metric!r}; known: {', '.join(TARGETS)}")
    if not model.variable_rate:
        raise ConfigError(f"a {metric} target needs variable-rate weights; {model.config.name} is fixed-rate")
    if not (math.isfinite(target) and target > 0) or max_passes < 2:
        raise ConfigError(f"the {metric} target must be a positive number (and at least 2 passes), got {target}")
    spec = TARGETS[metric]
    passes = 0

    def code(log_lmbda: float) -> TargetResult:
        nonlocal passes
        passes += 1
        lmbda = float(np.float32(math.exp(log_lmbda)))  # as the header records it
        data, recon, report = encode_image(
            model,
            image,
            estimate=False,
            reconstruct=reconstruct or spec.needs_reconstruction,
            lmbda=lmbda,
            refine_steps=refine_steps,
        )
        value = spec.measure(image, recon, report)
        return TargetResult(lmbda, data, recon, report, value, passes, spec.meets(value, target))

    assert model.rate is not None  # variable-rate, checked above
    low, high = (math.log(v) for v in model.rate.range)
    # Bad end: where the target is hardest to meet (high lambda for a rate budget, low for a quality floor).
    good, bad = (low, high) if spec.budget else (high, low)
    result = code(bad)
    if result.met:
        return result
    best = code(good)
    if not best.met:
        return best
    # signed distances to the target on the search axis; a met pass and a missed one bracket the root
    good_gap, bad_gap = (spec.axis(v) - spec.axis(target) for v in (best.value, result.value))
    kept = None  # which end the last pass kept: the Illinois rule halves a twice-kept end's gap
    while passes < max_passes and abs(best.value - target) > spec.tolerance(target):
        share = good_gap / (good_gap - bad_gap) if good_gap != bad_gap else 0.5
        trial_at = good + min(max(share, 0.05), 0.95) * (bad - good)  # stay strictly inside the bracket
        trial = code(trial_at)
        gap = spec.axis(trial.value) - spec.axis(target)
        if trial.met:
            good, best, good_gap = trial_at, trial, gap
            bad_gap = bad_gap / 2 if kept == "bad" else bad_gap
            kept = "bad"
        else:
            bad, bad_gap = trial_at, gap
            good_gap = good_gap / 2 if kept == "good" else good_gap
            kept = "good"
    best.passes = passes
    return best


@dataclass(frozen=True)
class RateChoice:
    """How each image is coded: at the model's own lambda, at ``lmbda``, or at a ``metric`` target;
    with ``refine_steps`` of encoder-side latent refinement (``kdic.codec.refine``)."""

    lmbda: float | None = None
    metric: str | None = None
    target: float | None = None
    max_passes: int = MAX_PASSES
    refine_steps: int = 0


def choose_rate(
    model: LearnedImageCodec,
    lmbda: float | None = None,
    target_bpp: float | None = None,
    target_psnr: float | None = None,
    max_passes: int = MAX_PASSES,
    quality: float | None = None,
    refine_steps: int = 0,
) -> RateChoice:
    """The rate the options ask for, checked once before any image is read: variable-rate weights code
    at ``quality`` (``DEFAULT_QUALITY`` when no option is given), ``lmbda`` or a target; fixed-rate ones
    at their own lambda only."""
    check_refine_steps(model, refine_steps)
    asked = {"--quality": quality, "--lmbda": lmbda, "--target-bpp": target_bpp, "--target-psnr": target_psnr}
    given = [flag for flag, value in asked.items() if value is not None]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} each set the rate; pass one")
    if not model.variable_rate:
        if given:
            raise ConfigError(
                f"{given[0]} needs variable-rate weights; {model.config.name} is fixed-rate "
                f"(lambda {model.lmbda}): it codes at that rate only"
            )
        return RateChoice(refine_steps=refine_steps)
    if target_bpp is None and target_psnr is None:
        chosen = lmbda if lmbda is not None else quality_lmbda(DEFAULT_QUALITY if quality is None else quality)
        model.check_lmbda(chosen)
        return RateChoice(lmbda=chosen, refine_steps=refine_steps)
    metric = "bpp" if target_bpp is not None else "psnr"
    return RateChoice(
        metric=metric,
        target=target_bpp if target_bpp is not None else target_psnr,
        max_passes=max_passes,
        refine_steps=refine_steps,
    )


def code_at(
    model: LearnedImageCodec, image: np.ndarray, choice: RateChoice, estimate: bool = False, reconstruct: bool = True
) -> TargetResult:
    """Code ``image`` as ``choice`` says; without a target, one pass (``value`` is its bpp)."""
    if choice.metric is not None:
        assert choice.target is not None  # choose_rate sets a metric together with its target
        return code_at_target(
            model, image, choice.metric, choice.target, choice.max_passes, reconstruct, choice.refine_steps
        )
    data, reconstruction, report = encode_image(
        model, image, estimate=estimate, reconstruct=reconstruct, lmbda=choice.lmbda, refine_steps=choice.refine_steps
    )
    return TargetResult(
        choice.lmbda if choice.lmbda is not None else model.lmbda,
        data,
        reconstruction,
        report,
        report.bits_per_pixel,
        1,
        True,
    )
