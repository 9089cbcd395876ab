"""Distillation engine on tiny presets: construction, strategies as data, exactly which weights move."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import kdic
from kdic.configs import bundled_names
from kdic.distill import build_distillation, derive_student, load_strategy
from kdic.distill.strategy import strategy_from_dict
from kdic.errors import ConfigError
from kdic.models import get_config
from kdic.train.data import CropDataset
from kdic.train.engine import TrainConfig, Trainer

from .helpers import torchrun_kdic

SAMPLES = Path(kdic.__file__).parent / "data" / "samples"
CONFIG = TrainConfig(lmbda=0.013, steps=1, batch_size=2, crop=64, checkpoint_every=1000, log_every=1000)

# student parts of kdic-tiny and the module prefixes that may move when each part trains
EXPECTED = {
    "stage1": ("student.g_a.stages.0.", "adapters.stage1_out."),
    "stage2": ("student.g_a.stages.1.", "adapters.stage2_in."),
    "stage3": ("student.g_a.stages.2.",),
    "stage4": ("student.g_s.stages.0.",),
    "stage5": ("student.g_s.stages.1.",),
    "stage6": ("student.g_s.stages.2.",),
    "channel-context": ("student.latent_codec.channel_context.",),
    "param-aggregation": ("student.latent_codec.param_aggregation.",),
    "encoder": ("student.g_a.", "adapters.stage1_out.", "adapters.stage2_in."),
    "decoder": ("student.g_s.",),
    "finetune": ("student.",),
    "train": ("student.",),
    "e2e": ("student.", "adapters.stage1_out."),
}


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return kdic.build_model("s2c-hybrid-tiny").eval()


def test_construction_reproduces_the_student_presets():
    derived = derive_student(get_config("s2c-hybrid-tiny"), "kdic-tiny", stage1_channels=16)
    assert (derived.transform, derived.entropy) == (get_config("kdic-tiny").transform, get_config("kdic-tiny").entropy)
    derived = derive_student(get_config("s2c-hybrid"), "kdic")  # default stage-1 width: 2/3 of 192 = 128
    assert (derived.transform, derived.entropy) == (get_config("kdic").transform, get_config("kdic").entropy)


def test_teacher_init_copies_kept_blocks_and_leading_channels(teacher):
    module, _ = build_distillation(teacher, get_config("kdic-tiny"), load_strategy("smodi"), 20, teacher_init=True)
    student = module.student
    t_w = teacher.g_a.stages[1].blocks[1].ffn.project_in.weight
    s_w = student.g_a.stages[1].blocks[1].ffn.project_in.weight
    assert torch.equal(s_w, t_w[: s_w.shape[0], : s_w.shape[1]])
    assert torch.equal(student.g_a.stages[0].resample.weight, teacher.g_a.stages[0].resample.weight[:16])


def test_prune_finetune_always_starts_from_the_teacher(teacher):
    """The control strategy asks for teacher initialisation itself; vanilla never gets it."""
    pruned, _ = build_distillation(teacher, get_config("kdic-tiny"), load_strategy("prune-finetune"), 4)
    t_w = teacher.g_a.stages[1].blocks[1].ffn.project_in.weight
    s_w = pruned.student.g_a.stages[1].blocks[1].ffn.project_in.weight
    assert torch.equal(s_w, t_w[: s_w.shape[0], : s_w.shape[1]])
    scratch, _ = build_distillation(teacher, get_config("kdic-tiny"), load_strategy("vanilla"), 4, teacher_init=True)
    assert not torch.equal(
        scratch.student.g_a.stages[1].blocks[1].ffn.project_in.weight, t_w[: s_w.shape[0], : s_w.shape[1]]
    )
    with pytest.raises(ConfigError, match="teacher_init needs uses_teacher"):
        strategy_from_dict(
            {
                "name": "x",
                "uses_teacher": False,
                "teacher_init": True,
                "phases": [{"name": "a", "fraction": 1.0, "train": ["all"]}],
            }
        )


@pytest.mark.parametrize("strategy", bundled_names("strategies"))
def test_each_strategy_moves_only_the_intended_weights(teacher, strategy):
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    spec = load_strategy(strategy)
    module, phases = build_distillation(teacher, get_config("kdic-tiny"), spec, 4 * 9)
    sampler = CropDataset(SAMPLES, 64, seed=0)
    for phase in phases:
        before = {k: v.clone() for k, v in module.state_dict().items()}
        Trainer(module, [replace(phase, steps=1)], CONFIG, None, sampler, quiet=True).run()
        changed = {
            k
            for k, v in module.state_dict().items()
            if not torch.equal(v, before[k]) and k not in ("hosted_stages", "folded_inputs")
        }
        assert changed, f"{strategy}/{phase.name}: nothing trained"
        allowed = EXPECTED[phase.name]
        assert all(k.startswith(allowed) for k in changed), (strategy, phase.name, sorted(changed)[:5])
    assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert "teacher" not in dict(module.named_children()) and not any(
        k.startswith("teacher") for k in module.state_dict()
    )


def test_smodi_budget_is_a_quarter_stagewise_and_configurable():
    spec = load_strategy("smodi")
    family = get_config("kdic-tiny").family
    expanded = spec.expand(3, 3, family)
    assert [p.name for p in expanded.phases] == [
        *(f"stage{k}" for k in range(1, 7)),
        "channel-context",
        "param-aggregation",
        "finetune",
    ]
    assert expanded.phases[7].swap == ("channel_context", "param_aggregation")  # the student's context in front
    steps = expanded.steps(800)
    assert sum(steps) == 800 and steps[-1] == 600 and len(steps) == 9
    half = spec.with_final_fraction(0.5).expand(3, 3, family).steps(800)
    assert half[-1] == 400 and half[:-1] == [50] * 8
    longer = spec.expand(4, 4, family)  # any number of stages: still a quarter, shared equally
    assert len(longer.phases) == 11 and longer.steps(1000) == [25] * 10 + [750]
    with pytest.raises(ConfigError):
        load_strategy("vanilla").with_final_fraction(0.5)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"name": "x", "phases": [{"name": "a", "fraction": 0.5, "train": ["all"]}]}, "sum to 1"),
        ({"name": "x", "phases": [{"name": "a", "fraction": 1.0, "train": ["../x"]}]}, "not a part name"),
        (
            {"name": "x", "phases": [{"name": "a", "fraction": 1.0, "each": ["stage"], "train": ["all"]}]},
            "drop 'train'",
        ),
        (
            {"name": "x", "phases": [{"name": "a", "fraction": 1.0, "train": ["stage1"], "host": "teacher"}]},
            "must be swapped-in",
        ),
        ({"name": "x", "phases": [{"name": "a", "fraction": 1.0, "train": ["all"], "lr": 3}]}, "unknown field"),
        (
            {"name": "x", "phases": [{"name": "a", "fraction": 1.0, "train": ["all"], "loss": "kl"}]},
            "loss must be one of",
        ),
    ],
)
def test_invalid_strategies_are_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        strategy_from_dict(bad)


@pytest.mark.parametrize("part, message", [("stage9", "this teacher has stages 1..6"), ("lrp", "no part 'lrp'")])
def test_parts_the_teacher_lacks_are_named(teacher, part, message):
    spec = strategy_from_dict({"name": "x", "phases": [{"name": "a", "fraction": 1.0, "train": [part]}]})
    with pytest.raises(ConfigError, match=message):
        build_distillation(teacher, get_config("kdic-tiny"), spec, 4)


def test_cross_architecture_pair_runs(teacher):
    """An all-conv student (different block family in stages 2-3) distilled from the hybrid teacher."""
    student = get_config("kdic-tiny")
    encoder = tuple(replace(s, block="s2c-conv") for s in student.transform.encoder)
    student = replace(
        student,
        name="conv-tiny",
        transform=replace(student.transform, encoder=encoder, decoder=tuple(reversed(encoder))),
    )
    module, phases = build_distillation(teacher, student, load_strategy("smodi"), 9)
    sampler = CropDataset(SAMPLES, 64, seed=0)
    summary = Trainer(module, phases, CONFIG, None, sampler, quiet=True).run()
    assert summary["global_step"] == 9


@pytest.mark.slow
def test_kdic_distill_cli_and_ddp(tmp_path):
    torch.manual_seed(0)
    teacher_path = kdic.save(kdic.build_model("s2c-hybrid-tiny"), tmp_path / "teacher.safetensors", lmbda=0.013)
    run = tmp_path / "run"
    result = torchrun_kdic(
        "distill",
        "--teacher",
        str(teacher_path),
        "--data",
        str(SAMPLES),
        "--val",
        str(SAMPLES),
        "--run-dir",
        str(run),
        *"--strategy smodi --steps 10 --batch-size 1 --crop 64".split(),
    )
    assert result.returncode == 0, result.stderr.split("Traceback")[0][-2000:]  # the workers' own words
    assert result.stdout.count("done: kdic-tiny distilled") == 1  # rank 0 reports, rank 1 stays quiet
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ranks_identical"] is True and summary["global_step"] == 10 and summary["strategy"] == "smodi"
    student = kdic.load(run / "model.safetensors")
    assert student.config.name == "kdic-tiny" and student.lmbda == 0.013
    assert json.loads((run / "config.json").read_text())["phase_steps"] == [1, 1, 1, 1, 1, 1, 1, 1, 2]


def test_assembly_folds_adapters_into_the_next_stage(teacher):
    """After stages are trained inside the teacher, the assembled student computes what the chain
    stage 1 -> A_out(1) -> A_in(2) -> stage 2 computed (exactly, away from the padded border).
    (In the tiny pair only stage 1/2 differ in interface width: 16 vs 32 channels.)"""
    from kdic.distill.hybrid import DistillationModule

    torch.manual_seed(0)
    module = DistillationModule(kdic.build_model("kdic-tiny"), teacher)
    assert sorted(module.adapters) == ["stage1_out", "stage2_in"]
    module.hosted_stages[1:7] = True
    student = module.student
    h1 = student.stage(1)(torch.rand(1, 3, 128, 128)).detach()
    with torch.no_grad():
        chained = student.stage(2).resample(module.adapters["stage2_in"](module.adapters["stage1_out"](h1)))
        unfolded = student.stage(2).resample(h1)
        module.assemble()
        module.assemble()  # idempotent
        folded = student.stage(2).resample(h1)
    assert module.folded_inputs.tolist() == [False, False, True, False, False, False, False]
    inner = (..., slice(1, -1), slice(1, -1))
    assert torch.allclose(chained[inner], folded[inner], atol=1e-5)
    assert not torch.allclose(chained[inner], unfolded[inner], atol=1e-2)


def test_teacher_init_adapters_select_the_kept_channels(teacher):
    """With --teacher-init the hybrid starts as the pruned teacher: adapters embed/select channels."""
    module, _ = build_distillation(teacher, get_config("kdic-tiny"), load_strategy("smodi"), 90, teacher_init=True)
    h = torch.randn(1, 16, 8, 8)
    embedded = module.adapters["stage1_out"](h)
    assert torch.equal(embedded[:, :16], h) and not embedded[:, 16:].any()
    assert torch.equal(module.adapters["stage2_in"](embedded), h)
