"""CompressAI's ``elic2022-official`` (He et al. 2022, ``Elic2022Official``) as a kdic ``elic`` model.

Its g_a/g_s are kdic's ELIC stages (conv5x5 resamplers, residual bottleneck blocks, attention
blocks), its latent codec kdic's SCCTX in ELIC style; depths, widths, attention positions and
channel groups are read off the keys and shapes. The checkerboard context is a masked 5x5
convolution there and a plain one here (kdic only reads it at non-anchors, from anchors), so the
mask is applied to the weights on import.
"""

from __future__ import annotations

import re

from ..entropy import SCCTXConfig
from ..models import ModelConfig, StageConfig
from .base import (
    IMPORTERS,
    Importer,
    ImportFailed,
    KeyMap,
    compressai_transform,
    copy_factorized_prior,
    derive_gaussian_conditional,
)

LC = "latent_codec"


def _layers(keys: KeyMap, prefix: str) -> list[tuple[int, str]]:
    """(index, kind) of a Sequential's children: 'conv', 'rbb' or 'attention'."""
    kinds: dict[int, str] = {}
    for key in keys.state:
        match = re.fullmatch(re.escape(prefix) + r"\.(\d+)\.(\w+)\..*", key)
        if match:
            kinds[int(match[1])] = {
                "conv1": "rbb",
                "conv2": "rbb",
                "conv3": "rbb",
                "conv_a": "attention",
                "conv_b": "attention",
            }.get(match[2], match[2])
        elif match := re.fullmatch(re.escape(prefix) + r"\.(\d+)\.(weight|bias)", key):
            kinds[int(match[1])] = "conv"
    layers = sorted(kinds.items())
    if [i for i, _ in layers] != list(range(len(layers))) or any(
        k not in ("conv", "rbb", "attention") for _, k in layers
    ):
        raise ImportFailed(f"{prefix}: unexpected layer layout {layers[:20]}")
    return layers


def _copy_rbb(keys: KeyMap, source: str, target: str, names: tuple[str, ...] = ("conv1", "conv2", "conv3")) -> None:
    """A residual bottleneck (``conv1..3``) or an attention block's residual unit (``conv.0/2/4``)."""
    for i, name in enumerate(names):
        for leaf in ("weight", "bias"):
            keys.copy(f"{source}.{name}.{leaf}", f"{target}.body.{2 * i}.{leaf}")


def _copy_attention(keys: KeyMap, source: str, target: str) -> None:
    for branch in ("conv_a", "conv_b"):
        for unit in range(3):
            _copy_rbb(keys, f"{source}.{branch}.{unit}", f"{target}.{branch}.{unit}", ("conv.0", "conv.2", "conv.4"))
    for leaf in ("weight", "bias"):
        keys.copy(f"{source}.conv_b.3.{leaf}", f"{target}.conv_b.3.{leaf}")


def _transform(keys: KeyMap, prefix: str) -> tuple[tuple[StageConfig, ...], int]:
    """Stages of g_a or g_s; each starts at a conv and holds its RBBs; the last conv is the projection.
    Attention before a stage's conv sits at its start, right after it "after-resample", after its
    blocks (or the projection) at its end."""
    layers = _layers(keys, prefix)
    convs = [i for i, k in layers if k == "conv"]
    if len(convs) < 2:
        raise ImportFailed(f"{prefix}: expected at least two convolutions")
    stages, widths = [], []
    for s, (start, stop) in enumerate(zip(convs[:-1], convs[1:])):
        body = [(i, k) for i, k in layers[start + 1 : stop]]
        blocks = [i for i, k in body if k == "rbb"]
        attention = [i for i, k in body if k == "attention"]
        last = s == len(convs) - 2
        before = [i for i, k in layers[:start] if k == "attention"] if s == 0 else []
        after = [i for i, k in layers[convs[-1] + 1 :] if k == "attention"] if last else []
        placed = (
            [("start", i) for i in before]
            + [("after-resample" if not blocks or i < blocks[0] else "end", i) for i in attention]
            + [("end", i) for i in after]
        )
        contiguous = not blocks or blocks == list(range(blocks[0], blocks[0] + len(blocks)))
        if (
            len(placed) > 1
            or not contiguous
            or (last and placed and placed[0][1] in attention and blocks and placed[0][1] > blocks[0])
        ):
            raise ImportFailed(f"{prefix}: stage {s + 1} has a layout kdic's ELIC stages cannot hold")
        target = f"{prefix}.stages.{s}"
        for leaf in ("weight", "bias"):
            keys.copy(f"{prefix}.{start}.{leaf}", f"{target}.resample.{leaf}")
        for j, i in enumerate(blocks):
            _copy_rbb(keys, f"{prefix}.{i}", f"{target}.blocks.{j}")
        for _, i in placed:
            _copy_attention(keys, f"{prefix}.{i}", f"{target}.attention")
        shape = keys.shape(f"{prefix}.{start}.weight")
        widths.append(shape[0] if prefix == "g_a" else shape[1])
        stages.append(StageConfig("elic-rbb", len(blocks), widths[-1], attention=placed[0][0] if placed else "none"))
    for leaf in ("weight", "bias"):
        keys.copy(f"{prefix}.{convs[-1]}.{leaf}", f"{prefix}.stages.{len(stages) - 1}.projection.{leaf}")
    projection = keys.shape(f"{prefix}.{convs[-1]}.weight")
    return tuple(stages), projection[0] if prefix == "g_a" else projection[1]


def _build(keys: KeyMap, name: str | None, partial: bool) -> ModelConfig:
    encoder, latent = _transform(keys, "g_a")
    decoder, image = _transform(keys, "g_s")
    if image != 3:
        raise ImportFailed(f"g_s ends with {image} channels, not RGB")
    width = encoder[0].channels
    groups: list[int] = []
    hyper = width
    if not partial:
        hyper = keys.shape(f"{LC}.hyper.h_a.0.weight")[0]
        while keys.has(f"{LC}.y.latent_codec.y{len(groups)}.context_prediction.weight"):
            groups.append(keys.shape(f"{LC}.y.latent_codec.y{len(groups)}.context_prediction.weight")[1])
        if len(groups) < 2 or sum(groups) != latent:
            raise ImportFailed(f"channel groups {groups} do not add up to M={latent}")
        for part in ("h_a", "h_s"):
            keys.copy_prefix(f"{LC}.hyper.{part}", f"latent_codec.{part}")
        copy_factorized_prior(keys, f"{LC}.hyper.entropy_bottleneck", "latent_codec.entropy_bottleneck")
        for k in range(len(groups)):
            group = f"{LC}.y.latent_codec.y{k}"
            if k:
                keys.copy_prefix(f"{LC}.y.channel_context.y{k}", f"latent_codec.channel_context.y{k}")
            mask = keys.take(f"{group}.context_prediction.mask")
            keys.put(
                f"latent_codec.spatial_context.{k}.weight",
                keys.take(f"{group}.context_prediction.weight") * mask,
                f"{group}.context_prediction.weight",
            )
            keys.copy(f"{group}.context_prediction.bias", f"latent_codec.spatial_context.{k}.bias")
            keys.copy_prefix(f"{group}.entropy_parameters", f"latent_codec.param_aggregation.{k}")
            derive_gaussian_conditional(keys, f"{group}.y.gaussian_conditional")
    entropy = SCCTXConfig(
        hyper_channels=hyper, groups=tuple(groups[:-1]) if groups else (16, 16, 32, 64), style="elic", coding="nearest"
    )
    transform = compressai_transform(latent, encoder, decoder)
    return ModelConfig(
        name or f"elic2022-official-n{width}-m{latent}",
        transform,
        entropy,
        "imported from compressai:elic2022-official",
    )


IMPORTERS.register("compressai:elic2022-official", Importer(_build))
