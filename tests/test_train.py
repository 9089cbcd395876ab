"""Training engine: run folders, exact resume, frozen modules stay frozen, DDP keeps ranks identical."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import kdic
from kdic.models import build_model
from kdic.train.data import CropDataset
from kdic.train.engine import Phase, TrainConfig, Trainer
from kdic.train.losses import phase_loss

from .helpers import torchrun_kdic, train_killed_then_resumed, train_tiny

SAMPLES = Path(kdic.__file__).parent / "data" / "samples"
CONFIG = TrainConfig(lmbda=0.013, steps=8, batch_size=2, crop=64, checkpoint_every=3, log_every=1)


def _trainer(run_dir: Path, trainable=("",)) -> tuple[torch.nn.Module, Trainer]:
    torch.manual_seed(0)
    model = build_model("kdic-tiny")
    sampler = CropDataset(SAMPLES, CONFIG.crop, seed=0)
    return model, Trainer(
        model, [Phase("p", CONFIG.steps, list(trainable), phase_loss())], CONFIG, run_dir, sampler, quiet=True
    )


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    reference, trainer = _trainer(tmp_path / "a")
    trainer.run()
    resumed = train_killed_then_resumed(_trainer, tmp_path / "b", 8)  # during step 8, after the checkpoint at 6
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    steps = [line.split(",")[0] for line in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [str(s) for s in range(1, 9)]  # rows after the checkpoint were rewritten, not duplicated


def test_frozen_modules_do_not_move(tmp_path):
    model, trainer = _trainer(None, trainable=("g_a.stages.1",))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.run()
    changed = {
        k.rsplit(".", 1)[0].split(".blocks")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    }
    assert changed == {"g_a.stages.1"} or all(k.startswith("g_a.stages.1") for k in changed)
    assert any(k.startswith("g_a.stages.1") for k in changed)


def test_kdic_train_run_folder(tmp_path):
    from kdic.cli import main

    run = tmp_path / "run"
    assert train_tiny(SAMPLES, run, "--lmbda 0.0067 --steps 4 --batch-size 2 --crop 64", "--val", str(SAMPLES)) == 0
    for name in (
        "config.json",
        "git.txt",
        "pip-freeze.txt",
        "log.csv",
        "summary.json",
        "model.safetensors",
        "checkpoints/state.safetensors",
    ):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "kdic-tiny"
    assert "torch==2.13.0" in (run / "pip-freeze.txt").read_text()
    assert kdic.load(run / "model.safetensors").lmbda == 0.0067
    assert (
        main(["train", "--model", "kdic-tiny", "--lmbda", "0.0067", "--data", str(SAMPLES), "--run-dir", str(run)]) == 2
    )

    # another lambda fine-tuned from this model: the config comes from the weights, training starts from them
    tuned = tmp_path / "tuned"
    assert (
        main(
            [
                "train",
                "--init",
                str(run / "model.safetensors"),
                "--lmbda",
                "0.013",
                "--data",
                str(SAMPLES),
                "--run-dir",
                str(tuned),
                "--steps",
                "1",
                "--lr",
                "1e-12",
                "--batch-size",
                "2",
                "--crop",
                "64",
                "--quiet",
            ]
        )
        == 0
    )
    start, end = kdic.load(run / "model.safetensors"), kdic.load(tuned / "model.safetensors")
    assert end.lmbda == 0.013 and end.config == start.config
    moved = {
        name for (name, a), b in zip(start.named_parameters(), end.parameters()) if not torch.allclose(a, b, atol=1e-8)
    }
    assert moved <= {"latent_codec.entropy_bottleneck.quantiles"}  # only the aux group has a real learning rate
    assert (
        main(
            [
                "train",
                "--init",
                str(run / "model.safetensors"),
                "--model",
                "s2c-hybrid-tiny",
                "--lmbda",
                "0.013",
                "--data",
                str(SAMPLES),
                "--run-dir",
                str(tmp_path / "mismatch"),
                "--quiet",
            ]
        )
        == 2
    )


def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    run = tmp_path / "ddp"
    result = torchrun_kdic(
        "train",
        "--data",
        str(SAMPLES),
        "--run-dir",
        str(run),
        *"--model kdic-tiny --lmbda 0.013 --steps 3 --batch-size 1 --crop 64 --quiet".split(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ranks_identical"] is True and summary["global_step"] == 3
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
