"""The module a distillation phase trains: the student, its adapters, and a frozen teacher beside it.

The teacher is held outside the module tree (never in ``state_dict``, ``parameters`` or DDP), stays
in eval mode without gradients, and is only ever *read*. A teacher-hosted phase runs the teacher
with some student parts swapped in; because the teacher's latent codec must then quantize the
training way (noise for the rate, straight-through rounding), the hybrid uses a shallow *view* of
it whose own flags say "training", while the teacher object itself is untouched.

Variable-rate pairs (teacher and student with the same ``variable_rate`` config) run every phase at
the step's lambda: the teacher, and a hybrid hosted by it, code through the teacher's gain units,
the student through its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import RESAMPLERS
from ..models import LearnedImageCodec
from .strategy import STAGE_PART, PhaseSpec


def entropy_part_modules(model: LearnedImageCodec, part: str) -> tuple[str, ...]:
    """Names of the latent-codec children that make up an entropy part, as the model's family declares."""
    parts = model.config.family.parts
    if part not in parts:
        raise ConfigError(f"this entropy model has no {part!r}; it has {', '.join(parts) or 'none'}")
    return parts[part]


def latent_interface(model: LearnedImageCodec) -> tuple:
    """What entropy sub-networks plug into (the family says: kind, latent width, groups or slices, ...)."""
    return model.config.family.interface(model.config.entropy, model.config.transform.latent_channels)


def stage_number(part: str) -> int | None:
    match = STAGE_PART.fullmatch(part)
    return int(match.group(1)) if match else None


@torch.no_grad()
def fold_input_map(layer: nn.Module, matrix: Tensor, offset: Tensor) -> None:
    """Make ``layer(h)`` compute what ``layer(matrix @ h + offset)`` did (1x1 map on channels).

    The offset becomes a bias; that is exact away from the zero-padded borders (and, for a
    transposed convolution, exact on average over the stride phases).
    """
    if isinstance(layer, nn.ConvTranspose2d):  # weight (in, out, kh, kw)
        bias = torch.einsum("iokl,i->o", layer.weight, offset) / (layer.stride[0] * layer.stride[1])
        layer.weight.copy_(torch.einsum("iokl,ij->jokl", layer.weight, matrix))
    else:  # weight (out, in, kh, kw); an input convolution, whose weight and bias are tensors
        weight = cast(Tensor, layer.weight)
        bias = torch.einsum("oikl,i->o", weight, offset)
        weight.copy_(torch.einsum("oikl,ij->ojkl", weight, matrix))
    cast(Tensor, layer.bias).add_(bias)


def _same_shapes(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


class DistillationModule(nn.Module):
    """Student + 1x1 adapters (where stage widths differ from the teacher's) + an unregistered teacher."""

    student: LearnedImageCodec
    teacher: LearnedImageCodec | None  # set with object.__setattr__: outside the module tree
    _latent_view: nn.Module | None  # likewise (it holds teacher modules)
    hosted_stages: Tensor
    folded_inputs: Tensor

    def __init__(self, student: LearnedImageCodec, teacher: LearnedImageCodec | None) -> None:
        super().__init__()
        self.student = student
        self.adapters = nn.ModuleDict()
        # Which stages trained with adapters around them, and which stage inputs absorbed them; in the
        # state so that a resumed run neither folds twice nor forgets to fold.
        self.register_buffer("hosted_stages", torch.zeros(student.stage_count + 1, dtype=torch.bool))
        self.register_buffer("folded_inputs", torch.zeros(student.stage_count + 1, dtype=torch.bool))
        object.__setattr__(self, "teacher", teacher)
        self.spec: PhaseSpec | None = None
        object.__setattr__(self, "_latent_view", None)
        self.encoder_stages = len(student.g_a.stages)
        if teacher is None:
            return
        teacher.eval().requires_grad_(False)
        layout = (len(teacher.g_a.stages), len(teacher.g_s.stages))
        if layout != (self.encoder_stages, len(student.g_s.stages)):
            raise ConfigError(
                f"the student's stages {self.encoder_stages}+{len(student.g_s.stages)} do not match the "
                f"teacher's {layout[0]}+{layout[1]} (encoder+decoder)"
            )
        widths = zip(teacher.config.transform.stage_widths, student.config.transform.stage_widths)
        for k, ((t_in, t_out), (s_in, s_out)) in enumerate(widths, start=1):
            if s_in != t_in:
                self.adapters[f"stage{k}_in"] = nn.Conv2d(t_in, s_in, 1)
            if s_out != t_out:
                self.adapters[f"stage{k}_out"] = nn.Conv2d(s_out, t_out, 1)

    @torch.no_grad()
    def slice_adapters(self) -> None:
        """Adapters that embed/select the kept channels (identity on the first min(s, t)), so a student
        initialised by pruning the teacher plugs into it as the pruned teacher stage would."""
        for adapter in self.adapters.values():
            assert isinstance(adapter, nn.Conv2d) and adapter.bias is not None  # as __init__ makes them
            adapter.weight.zero_()
            adapter.bias.zero_()
            kept = min(adapter.in_channels, adapter.out_channels)
            adapter.weight[range(kept), range(kept), 0, 0] = 1.0

    # -- parts -------------------------------------------------------------------------------
    def part_paths(self, part: str) -> list[str]:
        """Module paths (in this module) that make up a student part, adapters included."""
        if part == "all":
            return ["student"]
        k = stage_number(part)
        if k is not None:
            adapters = [f"adapters.stage{k}_{side}" for side in ("in", "out") if f"stage{k}_{side}" in self.adapters]
            return [f"student.{self.student.stage_path(k)}", *adapters]
        return [f"student.latent_codec.{name}" for name in entropy_part_modules(self.student, part)]

    def trainable_paths(self, spec: PhaseSpec) -> list[str]:
        paths = [p for part in spec.train for p in self.part_paths(part)]
        if spec.loss == "rd+feature":
            paths += [f"adapters.{p}_out" for p in spec.feature_parts if f"{p}_out" in self.adapters]
        return paths

    def inherit(self, parts: tuple[str, ...]) -> None:
        """Start the student's entropy ``parts`` from the teacher's weights (identical shapes required)."""
        for part in parts:
            for name in entropy_part_modules(self.student, part):
                assert self.teacher is not None  # only a strategy that uses the teacher inherits from it
                source = self.teacher.latent_codec.get_submodule(name)
                target = self.student.latent_codec.get_submodule(name)
                if not _same_shapes(source, target):
                    raise ConfigError(f"cannot inherit {part!r}: student and teacher {name} differ in shape")
                target.load_state_dict(source.state_dict())

    @property
    def variable_rate(self) -> bool:
        return self.student.variable_rate

    # -- phases ------------------------------------------------------------------------------
    def set_phase(self, spec: PhaseSpec) -> None:
        """Compose the forward pass of a phase (structure only; never touches weights)."""
        if spec.host == "teacher" or spec.loss != "rd":
            if self.teacher is None:
                raise ConfigError(f"phase {spec.name!r} needs a teacher")
        self.spec = spec
        object.__setattr__(self, "_latent_view", None)  # views hold teacher modules: keep them unregistered
        stages = [k for k in map(stage_number, spec.train) if k is not None]
        if spec.host == "teacher" or spec.loss == "feature":
            self.hosted_stages[stages] = True
        else:
            self.assemble()
        if spec.host == "teacher" and spec.loss != "feature":
            assert self.teacher is not None  # checked above
            teacher_codec = self.teacher.latent_codec
            view = copy.copy(teacher_codec)
            view._modules = dict(teacher_codec._modules)
            view.training = True
            bottleneck = copy.copy(teacher_codec.entropy_bottleneck)
            bottleneck.training = True
            view._modules["entropy_bottleneck"] = bottleneck
            entropy_swaps = {p for p in spec.swap if stage_number(p) is None}
            if entropy_swaps and latent_interface(self.student) != latent_interface(self.teacher):
                raise ConfigError(
                    f"phase {spec.name!r}: the student's entropy model does not plug into the teacher's "
                    f"({latent_interface(self.student)} vs {latent_interface(self.teacher)})"
                )
            for part in entropy_swaps:
                for name in entropy_part_modules(self.teacher, part):
                    view._modules[name] = self.student.latent_codec.get_submodule(name)
            object.__setattr__(self, "_latent_view", view)

    @torch.no_grad()
    def assemble(self) -> None:
        """Fold each adapter pair A_in(k+1) o A_out(k) between two stages trained with adapters into
        stage k+1's input convolutions, so that the assembled student computes what the stages
        learned to compute inside the teacher. Idempotent (``folded_inputs`` records it)."""
        for k in range(1, self.student.stage_count):
            if k == self.encoder_stages:  # crosses the quantized latent, which must match in width
                continue
            out_name, in_name = f"stage{k}_out", f"stage{k + 1}_in"
            if out_name not in self.adapters or not (self.hosted_stages[k] and self.hosted_stages[k + 1]):
                continue
            if self.folded_inputs[k + 1]:
                continue
            a_out, a_in = self.adapters[out_name], self.adapters[in_name]
            assert isinstance(a_out, nn.Conv2d) and isinstance(a_in, nn.Conv2d)  # as __init__ makes them
            assert a_out.bias is not None and a_in.bias is not None
            matrix = a_in.weight[:, :, 0, 0] @ a_out.weight[:, :, 0, 0]
            offset = a_in.weight[:, :, 0, 0] @ a_out.bias + a_in.bias
            stage = self.student.stage(k + 1)
            if stage.blocks_first or stage.attention_position == "start":
                raise ConfigError(
                    f"cannot fold the adapters in front of stage {k + 1}: its input is read by blocks, "
                    "not by its resampler; give the student the teacher's width there"
                )
            for layer in RESAMPLERS[self.student.config.transform.resampler_of(k + 1)].input_convs(stage.resample):
                fold_input_map(layer, matrix, offset)
            self.folded_inputs[k + 1] = True

    def _student_stage(self, k: int) -> Callable[[Tensor], Tensor]:
        def run(h: Tensor) -> Tensor:
            if f"stage{k}_in" in self.adapters:
                h = self.adapters[f"stage{k}_in"](h)
            h = self.student.stage(k)(h)
            return self.adapters[f"stage{k}_out"](h) if f"stage{k}_out" in self.adapters else h

        return run

    def _hybrid(self, x: Tensor, lmbda: float | None) -> dict:
        # set_phase() of a teacher-hosted phase made the view, and refused to run without a teacher
        teacher, view = self.teacher, self._latent_view
        assert self.spec is not None and teacher is not None and view is not None
        swap = set(self.spec.swap)

        def stage(k: int, h: Tensor) -> Tensor:
            return self._student_stage(k)(h) if f"stage{k}" in swap else teacher.stage(k)(h)

        def transform(h: Tensor, first: int, last: int, decoder: bool) -> Tensor:
            # features between stages are the teacher's width (the adapters see to it): its modulation
            modulate = teacher.modulation(decoder, lmbda)
            for k in range(first, last + 1):
                h = stage(k, h if k == first or modulate is None else modulate(k - first - 1, h))
            return h

        latent = view(teacher.scale_latent(transform(x, 1, self.encoder_stages, False), lmbda))
        h = teacher.unscale_latent(latent["y_hat"], lmbda)
        x_hat = transform(h, self.encoder_stages + 1, self.student.stage_count, True)
        return {"x_hat": x_hat, "likelihoods": latent["likelihoods"]}

    def _part_pairs(self, parts: tuple[str, ...]) -> list[tuple[nn.Module, Callable[[Tensor], Tensor]]]:
        """(teacher module, student function) pairs whose outputs an explicit loss compares."""
        pairs: list[tuple[nn.Module, Callable[[Tensor], Tensor]]] = []
        for part in parts:
            assert self.teacher is not None  # set_phase() refuses an explicit loss without a teacher
            k = stage_number(part)
            if k is not None:
                pairs.append((self.teacher.stage(k), self._student_stage(k)))
                continue
            for name in entropy_part_modules(self.teacher, part):
                teacher_part = self.teacher.latent_codec.get_submodule(name)
                student_part = self.student.latent_codec.get_submodule(name)
                children = (
                    list(teacher_part.keys())
                    if isinstance(teacher_part, nn.ModuleDict)
                    else (range(len(teacher_part)) if isinstance(teacher_part, nn.ModuleList) else [None])
                )
                for key in children:
                    pairs.append(
                        (
                            teacher_part if key is None else teacher_part[key],
                            student_part if key is None else student_part[key],
                        )
                    )
        return pairs

    @torch.no_grad()
    def _teacher_trace(
        self, x: Tensor, modules: list[nn.Module], lmbda: float | None
    ) -> dict[int, list[tuple[Tensor, Tensor]]]:
        """Inputs and outputs of ``modules`` during one (eval) teacher forward pass."""
        assert self.teacher is not None  # set_phase() refuses an explicit loss without a teacher
        trace: dict[int, list[tuple[Tensor, Tensor]]] = {id(m): [] for m in modules}
        handles = [m.register_forward_hook(lambda mod, inp, out: trace[id(mod)].append((inp[0], out))) for m in modules]
        try:
            self.teacher(x, lmbda)
        finally:
            for handle in handles:
                handle.remove()
        return trace

    def _explicit_loss(self, x: Tensor, lmbda: float | None) -> Tensor:
        assert self.spec is not None  # forward() checked it
        pairs = self._part_pairs(self.spec.train)
        trace = self._teacher_trace(x, [t for t, _ in pairs], lmbda)
        terms = [F.mse_loss(student(inp), out) for teacher, student in pairs for inp, out in trace[id(teacher)]]
        return torch.stack(terms).mean()

    def _student_with_features(self, x: Tensor, lmbda: float | None) -> dict:
        assert self.spec is not None and self.teacher is not None  # forward() and set_phase() checked them
        parts = self.spec.feature_parts
        captured: dict[int, Tensor] = {}
        handles = [
            # a part that names no stage (k None) fails in stage_path, as it always did
            self.student.stage(cast(int, k)).register_forward_hook(
                lambda mod, inp, out, k=k: captured.__setitem__(k, out)
            )
            for k in map(stage_number, parts)
        ]
        try:
            out = self.student(x, lmbda)
        finally:
            for handle in handles:
                handle.remove()
        with torch.no_grad():
            y = self.teacher.analyze_stages(x, lmbda)
            targets = dict(enumerate(y, start=1))
            y_hat = self.teacher.latent_codec(self.teacher.scale_latent(y[-1], lmbda))["y_hat"]
            decoded = self.teacher.reconstruct_stages(y_hat, lmbda)
            targets.update(enumerate(decoded, start=self.encoder_stages + 1))
        terms = []
        for k, feature in captured.items():
            adapter = self.adapters[f"stage{k}_out"] if f"stage{k}_out" in self.adapters else None
            terms.append(F.mse_loss(adapter(feature) if adapter is not None else feature, targets[k]))
        return {**out, "feature": torch.stack(terms).mean()}

    def forward(self, x: Tensor, lmbda: float | None = None) -> dict:
        """The phase's outputs at ``lmbda`` (a variable-rate pair's rate point; None for fixed-rate)."""
        if self.spec is None:
            raise RuntimeError("call set_phase() before running a distillation module")
        if self.spec.loss == "feature":
            return {"feature": self._explicit_loss(x, lmbda)}
        if self.spec.host == "teacher":
            return self._hybrid(x, lmbda)
        if self.spec.loss == "rd+feature":
            return self._student_with_features(x, lmbda)
        return self.student(x, lmbda)

    def aux_loss(self) -> Tensor | None:
        """The student's quantile loss, when its factorized prior is being trained."""
        return self.student.aux_loss() if any(p.requires_grad for p in self.aux_parameters()) else None

    def aux_parameters(self) -> list[nn.Parameter]:
        return self.student.aux_parameters()
