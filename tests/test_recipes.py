"""Recipes hold the paper's runs as data; --recipe makes them defaults, --dry-run prices them."""

from __future__ import annotations

import json

import pytest

from kdic.cli import main
from kdic.configs import bundled_names
from kdic.data import sample_image_path
from kdic.train.recipes import load_recipe

from .helpers import FIXED_RATE_WEIGHTS

PAPER_LMBDAS = (0.0017, 0.0025, 0.0035, 0.0067, 0.013, 0.025, 0.05)
TEACHER = str(FIXED_RATE_WEIGHTS / "s2c-hybrid-tiny-q3.safetensors")
DATA = str(sample_image_path().parent)


def test_every_recipe_is_the_papers_run():
    assert set(bundled_names("recipes")) >= {
        "s2c-hybrid-paper",
        "kdic-paper",
        "s2c-conv-paper",
        "conv-kd-paper",
        "tcm-l-paper",
        "tcm-kd-paper",
    }
    for name in bundled_names("recipes"):
        recipe = load_recipe(name)
        assert recipe.lmbdas == PAPER_LMBDAS and recipe.args["steps"] == 1_000_000 and recipe.args["lr"] == 1e-4
        assert recipe.args["crop"] == 256 and recipe.unstated  # what the paper leaves open is said
        if recipe.command == "distill":
            assert recipe.args["strategy"] == "smodi" and recipe.teacher_model


def test_dry_run_resolves_the_recipe_with_explicit_options_winning(capsys):
    assert (
        main(
            [
                "distill",
                "--recipe",
                "kdic-paper",
                "--teacher",
                TEACHER,
                "--student",
                "kdic-tiny",
                "--data",
                DATA,
                "--run-dir",
                "unused",
                "--dry-run",
                "--throughput",
                "36.78",
            ]
        )
        == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["model"] == "kdic-tiny" and plan["steps"] == 1_000_000 and plan["train"]["crop"] == 256
    finetune = plan["phases"][-1]
    assert finetune["steps"] == 750_000 and sum(p["steps"] for p in plan["phases"]) == 1_000_000
    hours = plan["device_hours"]
    assert hours["paper (NVIDIA A100, 36.78 samples/s)"] == pytest.approx(1e6 * 8 / 36.78 / 3600)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--recipe", "kdic-paper", "--data", DATA, "--run-dir", "x"], "is for 'kdic distill'"),
        (
            [
                "train",
                "--recipe",
                "s2c-hybrid-paper",
                "--lmbda",
                "0.012",
                "--data",
                DATA,
                "--run-dir",
                "x",
                "--dry-run",
            ],
            "runs at one of the lambdas",
        ),
        (["train", "--recipe", "no-such-recipe", "--data", DATA, "--run-dir", "x"], "unknown recipe"),
    ],
)
def test_misused_recipes_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
