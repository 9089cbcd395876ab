"""Training at scale on the same engine: streamed data (folders, lists, tar shards, workers),
devices, precision, gradient accumulation, wall-clock stops, and exact resume through all of them."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdic.errors import ConfigError, KdicError
from kdic.models import build_model
from kdic.train.data import CropDataset, batches, source_entries
from kdic.train.distributed import resolve_device
from kdic.train.engine import STATE_FILE, Phase, Runtime, TrainConfig, Trainer
from kdic.train.losses import phase_loss

from .helpers import torchrun_kdic

CONFIG = TrainConfig(lmbda=0.013, steps=4, batch_size=2, crop=64, checkpoint_every=100, log_every=1)


@pytest.fixture(scope="module")
def image_set(tmp_path_factory) -> Path:
    """Eight small photos-like images as files, one as a tar shard member, one smaller than the crop."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(6):
        gradient = np.linspace(0, 255, 96)[None, :, None] * rng.random((1, 1, 3))
        Image.fromarray((gradient + rng.integers(0, 40, (80, 96, 3))).clip(0, 255).astype(np.uint8)).save(
            root / f"img{i}.png"
        )
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "small.png")
    with tarfile.open(root / "shard-000.tar", "w") as tar:
        for i in range(2):
            data = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(data, format="JPEG")
            info = tarfile.TarInfo(f"sample{i}.jpg")
            info.size = len(data.getvalue())
            tar.addfile(info, io.BytesIO(data.getvalue()))
    return root


def test_sources_folders_lists_and_shards(image_set, tmp_path):
    assert len(source_entries(image_set)) == 9  # 7 files + 2 shard members
    assert len(source_entries(image_set / "shard-000.tar")) == 2
    listing = image_set / "list.txt"
    listing.write_text("# two of them\nimg0.png\nshard-000.tar\n")
    assert len(source_entries(listing)) == 3
    (tmp_path / "bad.txt").write_text("missing.png\n")
    with pytest.raises(KdicError, match="does not exist"):
        source_entries(tmp_path / "bad.txt")
    with pytest.raises(KdicError, match="neither a folder"):
        source_entries(image_set / "img0.png")


def test_crops_small_images_shards_and_per_rank_shards(image_set):
    data = CropDataset(image_set, 64, seed=3)
    crops = [data[k] for k in range(40)]
    assert all(c.shape == (3, 64, 64) and c.dtype == torch.uint8 for c in crops)
    assert torch.equal(data[7], CropDataset(image_set, 64, seed=3)[7])  # a pure function of (seed, rank, k)
    ranks = [CropDataset(image_set, 64, seed=3, rank=r, world_size=2) for r in range(2)]
    assert set(ranks[0].entries).isdisjoint(ranks[1].entries)  # shard members count one by one
    assert len(ranks[0]) + len(ranks[1]) == 9


def test_unreadable_images_are_skipped_with_a_warning(image_set, tmp_path, capfd):
    for i in range(3):
        (tmp_path / f"ok{i}.png").write_bytes((image_set / f"img{i}.png").read_bytes())
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    data = CropDataset(tmp_path, 64)
    assert all(data[k].shape == (3, 64, 64) for k in range(30))
    assert "skipping unreadable training image" in capfd.readouterr().err


def test_batches_do_not_depend_on_workers(image_set):
    data = CropDataset(image_set, 64, seed=1)
    alone = list(batches(data, 3, 5, 9, workers=0))
    parallel = list(batches(data, 3, 5, 9, workers=2))
    assert len(alone) == 4 and all(torch.equal(a, b) for a, b in zip(alone, parallel))
    assert torch.equal(alone[0], next(batches(data, 3, 5, 6)))  # step 5 is step 5, wherever a stream starts


def _run(image_set, run_dir, config=CONFIG, runtime=Runtime(), resume=False):
    torch.manual_seed(0)
    model = build_model("kdic-tiny")
    trainer = Trainer(
        model,
        [Phase("p", config.steps, [""], phase_loss())],
        config,
        run_dir,
        CropDataset(image_set, 64),
        quiet=True,
        runtime=runtime,
    )
    return model, trainer.run(resume=resume)


def test_max_minutes_stops_cleanly_and_resumes_exactly_with_workers(image_set, tmp_path):
    reference, summary = _run(image_set, tmp_path / "a")
    assert summary["complete"]
    _, stopped = _run(image_set, tmp_path / "b", runtime=Runtime(max_minutes=1e-9, workers=2))
    assert not stopped["complete"] and stopped["global_step"] == 1 and (tmp_path / "b" / STATE_FILE).is_file()
    resumed, summary = _run(image_set, tmp_path / "b", runtime=Runtime(workers=2), resume=True)
    assert summary["complete"] and summary["global_step"] == 4
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_accumulation_reads_the_same_samples_as_one_big_batch(image_set):
    read = []

    class Recording(CropDataset):
        def __getitem__(self, sample):
            read.append(sample)
            return super().__getitem__(sample)

    config = replace(CONFIG, steps=2, batch_size=2, accumulate=2)
    trainer = Trainer(
        build_model("kdic-tiny"),
        [Phase("p", 2, [""], phase_loss())],
        config,
        None,
        Recording(image_set, 64),
        quiet=True,
    )
    assert trainer.run()["global_step"] == 2
    assert read == list(range(8))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_steps_keep_rates_in_float32(image_set, precision):
    model = build_model("kdic-tiny")
    seen = []
    model.latent_codec.register_forward_hook(lambda m, i, out: seen.append(out["likelihoods"]["y"].dtype))
    config = replace(CONFIG, steps=2, precision=precision)
    summary = Trainer(
        model, [Phase("p", 2, [""], phase_loss())], config, None, CropDataset(image_set, 64), quiet=True
    ).run()
    assert summary["complete"] and seen and all(d == torch.float32 for d in seen)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_device_choice():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda:0")


@pytest.mark.slow
def test_ddp_run_stopped_by_max_minutes_resumes_to_the_uninterrupted_weights(image_set, tmp_path):
    """Two torchrun ranks, streamed data: stop after a step, resume, compare with one straight run."""

    def torchrun(run_dir: Path, *extra: str) -> None:
        result = torchrun_kdic(
            "train",
            "--data",
            str(image_set),
            "--run-dir",
            str(run_dir),
            *extra,
            *"--model kdic-tiny --lmbda 0.013 --steps 3 --batch-size 1 --crop 64 --quiet --device cpu".split(),
        )
        assert result.returncode == 0, result.stderr[-2000:]

    torchrun(tmp_path / "straight")
    torchrun(tmp_path / "stopped", "--max-minutes", "1e-9")
    assert not (tmp_path / "stopped" / "model.safetensors").exists()
    torchrun(tmp_path / "stopped", "--resume")
    from kdic.checkpoint import load

    a, b = load(tmp_path / "straight" / "model.safetensors"), load(tmp_path / "stopped" / "model.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert json.loads((tmp_path / "stopped" / "summary.json").read_text())["ranks_identical"] is True
