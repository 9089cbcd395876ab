"""CompressAI's ``bmshj2018-hyperprior`` (ScaleHyperprior) and ``mbt2018-mean`` (MeanScaleHyperprior).

g_a is conv5x5/2 + GDN stages ending in a conv5x5/2 to M, g_s its transposed mirror with IGDN; as
kdic stages: resampler plus one GDN block each, the last conv as the projection. Widths, the
number of stages and which hyperprior it is are read off the shapes.
"""

from __future__ import annotations

import functools

from ..entropy import HyperpriorConfig
from ..models import ModelConfig, StageConfig
from .base import (
    IMPORTERS,
    Importer,
    ImportFailed,
    KeyMap,
    compressai_transform,
    copy_factorized_prior,
    copy_gdn,
    count_layers,
    derive_gaussian_conditional,
)


def _transform(keys: KeyMap, prefix: str, block: str) -> tuple[tuple[StageConfig, ...], int]:
    """Stages of g_a/g_s (conv, GDN, conv, GDN, ..., conv), their tensors mapped; returns (stages, out width)."""
    convs = count_layers(keys, prefix)
    if len(convs) < 2 or convs != list(range(0, 2 * len(convs), 2)):
        raise ImportFailed(f"{prefix}: expected convolutions at {prefix}.0, {prefix}.2, ..., found indexes {convs}")
    target = "g_a" if prefix == "g_a" else "g_s"
    stages = []
    for i, index in enumerate(convs[:-1]):
        weight = keys.shape(f"{prefix}.{index}.weight")
        stages.append(StageConfig(block, 1, weight[0] if prefix == "g_a" else weight[1]))
        for leaf in ("weight", "bias"):
            keys.copy(f"{prefix}.{index}.{leaf}", f"{target}.stages.{i}.resample.{leaf}")
        copy_gdn(keys, f"{prefix}.{index + 1}", f"{target}.stages.{i}.blocks.0")
    for leaf in ("weight", "bias"):
        keys.copy(f"{prefix}.{convs[-1]}.{leaf}", f"{target}.stages.{len(stages) - 1}.projection.{leaf}")
    last = keys.shape(f"{prefix}.{convs[-1]}.weight")
    return tuple(stages), last[0] if prefix == "g_a" else last[1]


def _build(family: str, keys: KeyMap, name: str | None, partial: bool) -> ModelConfig:
    encoder, latent = _transform(keys, "g_a", "gdn")
    decoder, image = _transform(keys, "g_s", "igdn")
    if image != 3:
        raise ImportFailed(f"g_s ends with {image} channels, not RGB")
    width = encoder[0].channels
    if partial:
        hyper, means = width, family == "mbt2018-mean"
    else:
        hyper = keys.shape("h_a.0.weight")[0]
        means = keys.shape("h_s.4.weight")[0] == 2 * latent
        if means != (family == "mbt2018-mean"):
            raise ImportFailed(
                f"h_s.4 predicts {keys.shape('h_s.4.weight')[0]} channels for M={latent}: this is "
                f"{'a mean-scale (mbt2018-mean)' if means else 'a scale (bmshj2018-hyperprior)'} "
                f"hyperprior, not {family}"
            )
        for part in ("h_a", "h_s"):
            keys.copy_prefix(part, f"latent_codec.{part}")
        copy_factorized_prior(keys, "entropy_bottleneck", "latent_codec.entropy_bottleneck")
        derive_gaussian_conditional(keys, "gaussian_conditional")
    transform = compressai_transform(latent, encoder, decoder)
    return ModelConfig(
        name or f"{family}-n{width}-m{latent}",
        transform,
        HyperpriorConfig(hyper, means),
        f"imported from compressai:{family}",
    )


for _family in ("bmshj2018-hyperprior", "mbt2018-mean"):
    IMPORTERS.register(f"compressai:{_family}", Importer(functools.partial(_build, _family)))
