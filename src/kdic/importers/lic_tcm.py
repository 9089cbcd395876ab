"""LIC_TCM's ``TCM`` (Liu et al. 2023, ``models/tcm.py``) as a kdic TCM model with the slice entropy model.

kdic's TCM stages, mixed transformer-CNN blocks and sliced channel context follow LIC_TCM layer for
layer, so the import is a renaming: ``msa.embedding_layer``/``msa.linear`` become ``attn.qkv``/
``attn.proj``, the relative-position table [heads, 2w-1, 2w-1] becomes kdic's [(2w-1)^2, heads],
SWAtten's Swin pair ``non_local_block.block_1/2`` becomes ``swin.0/1``. Depths, widths, head
sizes and MLP ratios are read off the shapes; windows are LIC_TCM's (8 in the transforms, 4 in
the hyper transforms).
"""

from __future__ import annotations

import re

from ..entropy import SliceConfig
from ..models import ModelConfig, StageConfig, TransformConfig
from .base import (
    IMPORTERS,
    Importer,
    ImportFailed,
    KeyMap,
    copy_factorized_prior,
    copy_gdn,
    derive_gaussian_conditional,
)

RENAMES = (
    (r"msa\.embedding_layer\.", "attn.qkv."),
    (r"msa\.linear\.", "attn.proj."),
    (r"msa\.relative_position_params$", "attn.relative_position_bias"),
    (r"non_local_block\.block_([12])\.", lambda m: f"swin.{int(m[1]) - 1}."),
    (r"^conv_([ab])\.(\d)\.conv\.", r"attention.conv_\1.\2.body."),
    (r"^conv_b\.3\.", "attention.conv_b.3."),
)


def _copy(keys: KeyMap, source: str, target: str) -> None:
    """Every key under ``source.``, renamed into kdic's layout under ``target.``."""
    found = [k for k in keys.state if k.startswith(source + ".")]
    if not found:
        raise ImportFailed(f"expected keys under {source!r}; there are none")
    for gdn in sorted({k[: -len(".beta")] for k in found if re.search(r"\bi?gdn\.beta$", k)}):  # in RBWS / RBU
        copy_gdn(keys, gdn, f"{target}.{gdn[len(source) + 1 :]}")
        found = [k for k in found if not k.startswith(gdn + ".")]
    for key in found:
        leaf = key[len(source) + 1 :]
        for pattern, replacement in RENAMES:
            leaf = re.sub(pattern, replacement, leaf)
        value = keys.take(key)
        if leaf.endswith("relative_position_bias"):  # [heads, 2w-1, 2w-1] -> [(2w-1)^2, heads]
            value = value.permute(1, 2, 0).reshape(-1, value.shape[0])
        keys.put(f"{target}.{leaf}", value, key)


def _blocks(keys: KeyMap, prefix: str) -> list[tuple[int, bool]]:
    """(index, is a ConvTransBlock) of a Sequential's children."""
    found: dict[int, bool] = {}
    for key in keys.state:
        if m := re.fullmatch(re.escape(prefix) + r"\.(\d+)\.(.*)", key):
            found[int(m[1])] = found.get(int(m[1]), False) or m[2].startswith("conv1_1.")
    return sorted(found.items())


def _transform(keys: KeyMap, prefix: str) -> tuple[tuple[StageConfig, ...], int, int]:
    """Stages of g_a/g_s: a resampler (RBWS/RBU) then ConvTransBlocks; the last child is the projection.
    Returns (stages, output width, 2N)."""
    children = _blocks(keys, prefix)
    if [i for i, _ in children] != list(range(len(children))) or len(children) < 2:
        raise ImportFailed(f"{prefix}: unexpected layer indexes {[i for i, _ in children][:20]}")
    starts = [i for i, is_block in children[:-1] if not is_block]
    stages = []
    for s, start in enumerate(starts):
        stop = starts[s + 1] if s + 1 < len(starts) else len(children) - 1
        blocks = list(range(start + 1, stop))
        _copy(keys, f"{prefix}.{start}", f"{prefix}.stages.{s}.resample")
        width: int | None = None
        head_dim, ratio = 32, 4.0
        if blocks:
            width = keys.shape(f"{prefix}.{blocks[0]}.conv1_1.weight")[0]
            first = f"{prefix}.{blocks[0]}.trans_block"
            head_dim = width // 2 // keys.shape(f"{first}.msa.relative_position_params")[0]
            ratio = keys.shape(f"{first}.mlp.0.weight")[0] / (width // 2)
        for j, index in enumerate(blocks):
            _copy(keys, f"{prefix}.{index}", f"{prefix}.stages.{s}.blocks.{j}")
        if width is None:
            raise ImportFailed(f"{prefix}: stage {s + 1} has no transformer-CNN block to read its width from")
        stages.append(StageConfig("tcm", len(blocks), width, ratio, head_dim=head_dim))
    last = len(children) - 1
    _copy(keys, f"{prefix}.{last}", f"{prefix}.stages.{len(stages) - 1}.projection")
    shape = keys.shape(f"{prefix}.{last}.weight" if prefix == "g_a" else f"{prefix}.{last}.0.weight")
    return tuple(stages), shape[0] if prefix == "g_a" else shape[0] // 4, stages[0].channels


def _build(keys: KeyMap, name: str | None, partial: bool) -> ModelConfig:
    encoder, latent, width = _transform(keys, "g_a")
    decoder, image, _ = _transform(keys, "g_s")
    if image != 3:
        raise ImportFailed(f"g_s ends with {image} channels, not RGB")
    entropy = SliceConfig(hyper_width=width, hyper_blocks=encoder[0].depth)
    if not partial:
        hyper_blocks = [i for i, is_block in _blocks(keys, "h_a") if is_block]
        slices = len({m[1] for k in keys.state if (m := re.match(r"cc_mean_transforms\.(\d+)\.", k))})
        support = (keys.shape(f"cc_mean_transforms.{slices - 1}.0.weight")[1] - latent) // (latent // slices)
        entropy = SliceConfig(
            hyper_channels=keys.shape("entropy_bottleneck.quantiles")[0],
            hyper_width=width,
            hyper_blocks=len(hyper_blocks),
            slices=slices,
            # the last slice sees all earlier ones unless the support was capped below that
            max_support=support if support < slices - 1 else SliceConfig.max_support,
            context_widths=(
                keys.shape("cc_mean_transforms.0.0.weight")[0],
                keys.shape("cc_mean_transforms.0.2.weight")[0],
            ),
        )
        for source, target in (("h_a", "h_a"), ("h_mean_s", "h_mean_s"), ("h_scale_s", "h_scale_s")):
            for index, _ in _blocks(keys, source):
                _copy(keys, f"{source}.{index}", f"latent_codec.{target}.{index}")
        for i in range(slices):
            for source, target in (("atten_mean", "atten_mean"), ("atten_scale", "atten_scale")):
                _copy(keys, f"{source}.{i}.0", f"latent_codec.{target}.{i}")
            for source, target in (
                ("cc_mean_transforms", "cc_mean"),
                ("cc_scale_transforms", "cc_scale"),
                ("lrp_transforms", "lrp"),
            ):
                _copy(keys, f"{source}.{i}", f"latent_codec.{target}.{i}")
        copy_factorized_prior(keys, "entropy_bottleneck", "latent_codec.entropy_bottleneck")
        derive_gaussian_conditional(keys, "gaussian_conditional")
    transform = TransformConfig(
        latent, encoder, decoder, down="rbws", up="rbu", latent_projection="conv3x3", image_projection="subpel3x3"
    )
    return ModelConfig(name or f"lic-tcm-n{width // 2}-m{latent}", transform, entropy, "imported from lic_tcm:tcm")


IMPORTERS.register("lic_tcm:tcm", Importer(_build))
