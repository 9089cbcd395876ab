"""Reading other projects' checkpoints, and the bookkeeping that makes an import exact.

A checkpoint is read without running pickled code (``torch.load(weights_only=True)`` or
safetensors), unwrapped (``{"state_dict": ...}``, DataParallel's ``module.``), and its older
CompressAI names are brought up to date. An importer then maps it onto a kdic model through a
``KeyMap``, which insists that every source key is used or named as derived, and that every kdic
tensor is filled: nothing is dropped or left at its initial value silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import KdicError
from ..models import LearnedImageCodec, ModelConfig, StageConfig, TransformConfig
from ..registry import Registry


class ImportFailed(KdicError):
    """A checkpoint that cannot be read, or whose layout does not fit the named source."""


# CompressAI renamed the factorized prior's parameters twice, and its zoo renamed ``downsample``.
_PRIOR = {"matrix": "matrices", "bias": "biases", "factor": "factors"}
OLD_NAMES = (
    (re.compile(r"\._(matrix|bias|factor)(\d+)$"), lambda m: f".{_PRIOR[m[1]]}.{m[2]}"),
    (re.compile(r"\._(matrices|biases|factors)\.(\d+)$"), lambda m: f".{m[1]}.{m[2]}"),
    (re.compile(r"\.downsample\."), lambda m: ".skip."),
)


def modern_name(key: str) -> str:
    """``entropy_bottleneck._matrix0`` -> ``entropy_bottleneck.matrices.0`` (and the like)."""
    for pattern, replace in OLD_NAMES:
        key = pattern.sub(replace, key)
    return key


def read_state_dict(source: str | Path | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A flat name -> tensor dict from a file (.pth/.pth.tar/.pt/.ckpt or .safetensors) or a mapping."""
    state: object  # whatever the file holds, checked below
    if isinstance(source, Mapping):
        state = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImportFailed(f"checkpoint {path} does not exist")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip and safetensors errors of a damaged or hostile file
            raise ImportFailed(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    if not isinstance(state, Mapping) or not state:
        raise ImportFailed("the checkpoint holds no state dict (expected name -> tensor, possibly under 'state_dict')")
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ImportFailed(f"the checkpoint entry {str(key)[:80]!r} is not a named tensor")
        name = modern_name(key[len("module.") :] if key.startswith("module.") else key)
        if name in out:
            raise ImportFailed(f"the checkpoint names {name!r} twice (old and new names)")
        out[name] = value
    return out


class KeyMap:
    """Source tensors consumed by name; what is left over or missing is an error naming the key."""

    def __init__(self, state: dict[str, Tensor]) -> None:
        self.state = state
        self.used: set[str] = set()
        self.derived: set[str] = set()
        self.target: dict[str, Tensor] = {}
        self.origin: dict[str, str] = {}  # kdic name -> the source key it came from

    def has(self, key: str) -> bool:
        return key in self.state

    def shape(self, key: str) -> tuple[int, ...]:
        if key not in self.state:
            raise ImportFailed(f"expected key {key!r} is missing")
        return tuple(self.state[key].shape)

    def take(self, key: str) -> Tensor:
        self.shape(key)
        self.used.add(key)
        return self.state[key].float()

    def put(self, target: str, value: Tensor, origin: str | None = None) -> None:
        self.target[target] = value
        self.origin[target] = origin or target

    def copy(self, source: str, target: str) -> None:
        self.put(target, self.take(source), source)

    def copy_prefix(self, source: str, target: str) -> None:
        """Every source key under ``source.`` to the same relative name under ``target.``."""
        keys = [k for k in self.state if k.startswith(source + ".")]
        if not keys:
            raise ImportFailed(f"expected keys under {source!r}; there are none")
        for key in keys:
            self.copy(key, target + key[len(source) :])

    def derive(self, pattern: str) -> None:
        """Keys matching ``pattern`` are tables kdic computes itself (CDFs, bounds, scale tables)."""
        regex = re.compile(pattern)
        self.derived |= {k for k in self.state if regex.fullmatch(k)}

    def finish(self, model: LearnedImageCodec, source: str, partial: bool) -> None:
        """Load the mapped tensors; every source key must be accounted for, every kdic tensor filled."""
        left = sorted(set(self.state) - self.used - self.derived)
        if left:
            raise ImportFailed(
                f"{source}: key {left[0]!r} does not fit the layout ({len(left)} unmapped, e.g. {', '.join(left[:3])})"
            )
        expected = model.state_dict()
        for name, value in self.target.items():
            if name not in expected:
                raise ImportFailed(
                    f"{source}: key {self.origin[name]!r} does not fit the layout (kdic has no {name!r})"
                )
            if tuple(expected[name].shape) != tuple(value.shape):
                raise ImportFailed(
                    f"{source}: key {self.origin[name]!r} has shape {tuple(value.shape)}, the layout "
                    f"needs {tuple(expected[name].shape)} for {name}"
                )
        missing = [
            k
            for k in expected
            if k not in self.target and not (partial and k.startswith("latent_codec.")) and not k.startswith("rate.")
        ]
        if missing:
            raise ImportFailed(f"{source}: nothing in the checkpoint fills kdic's {missing[0]!r}")
        model.load_state_dict({**expected, **self.target})


@dataclass(frozen=True)
class Importer:
    """``build(keys, name, partial)`` reads a layout off the shapes and fills ``keys``' targets."""

    build: Callable[[KeyMap, str | None, bool], ModelConfig]


IMPORTERS: Registry[Importer] = Registry("import source")


def import_checkpoint(
    source: str | Path | Mapping[str, Tensor], kind: str, partial: bool = False, name: str | None = None
) -> LearnedImageCodec:
    """A kdic model holding another project's weights (``kind`` e.g. ``compressai:mbt2018-mean``).

    ``partial=True`` accepts a state dict of the transforms only (``g_a.*``, ``g_s.*``); the
    entropy model then keeps its fresh initialisation (train it before coding with it).
    """
    importer = IMPORTERS[kind]
    keys = KeyMap(read_state_dict(source))
    if partial:
        foreign = sorted(k for k in keys.state if not k.startswith(("g_a.", "g_s.")))
        if foreign:
            raise ImportFailed(f"--partial takes only g_a.* and g_s.* keys; found {foreign[0]!r}")
    config = importer.build(keys, name, partial)
    model = LearnedImageCodec(config)
    keys.finish(model, kind, partial)
    return model.eval()


def copy_gdn(keys: KeyMap, source: str, target: str) -> None:
    """CompressAI's GDN stores beta, gamma through a lower-bounded square-root parametrization:
    effective = max(stored, bound)**2 - pedestal; kdic's stores b, g with beta = b**2 + 1e-6,
    gamma = g**2. Convert by value, with the checkpoint's own bounds and pedestals."""
    from ..layers import GDN

    def effective(name: str) -> Tensor:
        stored = keys.take(f"{source}.{name}")
        if keys.has(f"{source}.{name}_reparam.pedestal"):
            pedestal = keys.take(f"{source}.{name}_reparam.pedestal")
            bound = keys.take(f"{source}.{name}_reparam.lower_bound.bound")
            return torch.maximum(stored.double(), bound.double()) ** 2 - pedestal.double()
        return stored.double() ** 2  # a plain (already non-negative) parametrization

    beta_min = GDN(1).beta_min
    keys.put(f"{target}.beta", (effective("beta") - beta_min).clamp_min(0).sqrt().float(), f"{source}.beta")
    keys.put(f"{target}.gamma", effective("gamma").clamp_min(0).sqrt().float(), f"{source}.gamma")


def copy_factorized_prior(keys: KeyMap, source: str, target: str) -> None:
    """The factorized prior's parameters; its CDF tables and bounds are derived (kdic builds its own)."""
    for key in [k for k in keys.state if k.startswith(source + ".")]:
        leaf = key[len(source) + 1 :]
        if re.fullmatch(r"(matrices|biases|factors)\.\d+|quantiles", leaf):
            keys.copy(key, f"{target}.{leaf}")
    keys.derive(re.escape(source) + r"\.(_offset|_quantized_cdf|_cdf_length|target|likelihood_lower_bound\.bound)")


def derive_gaussian_conditional(keys: KeyMap, source: str) -> None:
    """CompressAI's Gaussian conditional has no parameters: its tables are kdic's own (same scale table)."""
    keys.derive(
        re.escape(source) + r"\.(_offset|_quantized_cdf|_cdf_length|scale_table|scale_bound|"
        r"likelihood_lower_bound\.bound|lower_bound_scale\.bound)"
    )


def count_layers(keys: KeyMap, prefix: str) -> list[int]:
    """Indexes of a Sequential's children that have a ``weight`` (``g_a.0``, ``g_a.2``, ...)."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.weight")
    return sorted(int(m[1]) for k in keys.state if (m := pattern.fullmatch(k)))


def compressai_transform(
    latent: int, encoder: tuple[StageConfig, ...], decoder: tuple[StageConfig, ...]
) -> TransformConfig:
    """CompressAI's g_a/g_s skeleton (5x5 strided convolutions and transposed ones between the stages)."""
    return TransformConfig(
        latent,
        encoder,
        decoder,
        down="conv5x5",
        up="deconv5x5",
        latent_projection="conv5x5",
        image_projection="deconv5x5",
    )
