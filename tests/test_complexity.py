"""Complexity counts against the paper (Tables 1, 2, 4) and against hand-computed layer counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kdic.bench import count_complexity
from kdic.bench.zoo_report import zoo_rows
from kdic.layers import LayerNorm2d

TEACHERS = ("s2c-hybrid", "tcm-l")
STUDENTS = ("kdic", "conv-kd", "tcm-kd", "s2c-conv")


@pytest.fixture(scope="module")
def rows():
    return {r.name: r for r in zoo_rows(quiet=True)}


@pytest.mark.parametrize("name", TEACHERS)
def test_teachers_within_one_percent_of_paper(rows, name):
    row = rows[name]
    assert abs(row.params_deviation) < 1.0, row.to_dict()
    assert abs(row.macs_deviation) < 1.0, row.to_dict()


@pytest.mark.parametrize("name", STUDENTS)
def test_students_within_tolerance_of_paper(rows, name):
    row = rows[name]
    assert abs(row.params_deviation) < 3.0, row.to_dict()
    assert abs(row.macs_deviation) < 5.0, row.to_dict()


def test_reference_totals_match_public_implementations(rows):
    # all-parameter totals measured on CompressAI's Elic2022Official, LIC_TCM's TCM (N=128) and
    # the S2CFormer-Hybrid reconstruction (../shared/spec/architectures.md sections 3.6, 5.1, 6)
    assert rows["elic"].complexity.params_total == 32_074_200
    assert rows["tcm-l"].complexity.params_total == 76_568_148
    assert rows["s2c-hybrid"].complexity.params_total == 79_713_349
    # thop MACs of LIC_TCM at 2048x1024: 3.737T
    assert rows["tcm-l"].complexity.macs_paper / 1e12 == pytest.approx(3.737, abs=5e-4)


def test_paper_ratios_kdic_vs_teacher(rows):
    student, teacher = rows["kdic"].complexity, rows["s2c-hybrid"].complexity
    assert 1 - student.params_paper / teacher.params_paper == pytest.approx(0.40, abs=0.03)  # paper: -40%
    assert 1 - student.macs_paper / teacher.macs_paper == pytest.approx(0.57, abs=0.03)  # paper: -57%


def test_tiny_presets_keep_paper_proportions(rows):
    student, teacher = rows["kdic-tiny"].complexity, rows["s2c-hybrid-tiny"].complexity
    assert 0.35 <= 1 - student.params_paper / teacher.params_paper <= 0.45
    assert 1 - student.macs_paper / teacher.macs_paper >= 0.50


def test_thop_convention_by_hand():
    """Conv counts out x Cin/groups x k^2; a stride-2 deconv counts at its output size; LayerNorm2d is excluded."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),  # 8 x 16 x 16 outputs, 27 MACs each
        LayerNorm2d(8),  # not a thop type: params excluded, 0 MACs
        nn.Conv2d(8, 8, 5, padding=2, groups=8),  # depth-wise: 25 MACs per output
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1),  # thop: 4 x 32 x 32 outputs x 8 x 16
    )
    c = count_complexity(model, (1, 3, 32, 32))
    assert c.macs_paper == 8 * 16 * 16 * 27 + 8 * 16 * 16 * 25 + 4 * 32 * 32 * 8 * 16
    assert c.params_total == c.params_paper + 16
    assert c.params_paper == (3 * 8 * 9 + 8) + (8 * 25 + 8) + (8 * 4 * 16 + 4)
    # honest MACs count the transposed convolution at its real cost (input positions x Cout x k^2)
    assert c.macs_total == 8 * 16 * 16 * 27 + 8 * 16 * 16 * 25 + 8 * 16 * 16 * 4 * 16


def test_counting_leaves_model_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    before = [p.clone() for p in model.parameters()]
    count_complexity(model, (1, 3, 8, 8))
    assert all(p.device.type == "cpu" and torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert not model._forward_hooks and not model[0]._forward_hooks
