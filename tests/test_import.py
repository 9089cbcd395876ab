"""Importing CompressAI checkpoints: conformance with outputs computed by CompressAI's own code
(../shared/conformance, not kdic), the checkpoint forms users hold, and layouts that do not fit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import kdic
import kdic.cli
import kdic.importers
from kdic.importers import IMPORTERS, ImportFailed, import_checkpoint, read_state_dict
from kdic.importers.conformance import compare

from .helpers import run_kdic

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
SOURCES = {
    "bmshj2018-hyperprior-N64-M96": "compressai:bmshj2018-hyperprior",
    "mbt2018-mean-N64-M96": "compressai:mbt2018-mean",
    "elic2022-official-N64-M128": "compressai:elic2022-official",
}
PRETRAINED = CONFORMANCE / "pretrained" / "mbt2018-mean-N64-M96-lmbda0.013"


@pytest.fixture(scope="module")
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance fixtures not found at {CONFORMANCE} (they live in ../shared, beside the clone)")
    return CONFORMANCE


def test_the_parsers_source_list_is_the_registry():
    assert list(kdic.importers.SOURCES) == list(IMPORTERS)


@pytest.mark.parametrize("fixture", sorted(SOURCES))
def test_imported_model_reproduces_compressai(conformance, fixture):
    """Eval-mode forward within 1e-4 of CompressAI's; kdic's own coded path within 0.01 dB of
    CompressAI's decoded image and 2% of its estimated bits; parameter count equal."""
    folder = conformance / fixture
    meta = json.loads((folder / "meta.json").read_text())
    model = import_checkpoint(folder / "weights.safetensors", SOURCES[fixture])
    assert model.num_parameters() == meta["params"]
    report = compare(model, load_file(str(folder / "expected.safetensors")), meta["estimated_bits_eval_forward"])
    assert report["y_max_abs"] < 1e-4 and report["x_hat_max_abs"] < 1e-4
    assert report["likelihoods_y_max_rel"] < 1e-4 and report["likelihoods_z_max_rel"] < 1e-4
    assert abs(report["coded_psnr_minus_peer_db"]) < 0.01
    assert abs(report["coded_bits_over_peer_estimate"]) < 0.02


@pytest.mark.parametrize(
    "layout",
    [
        "bmshj2018-hyperprior quality 1-5",
        "bmshj2018-hyperprior quality 6-8",
        "mbt2018-mean quality 1-4",
        "mbt2018-mean quality 5-8",
        "elic2022-official",
        "TCM-L",
        "TCM-S",
    ],
)
def test_full_size_layouts_import_with_every_key_mapped(conformance, layout):
    layouts = json.loads((conformance / "full_size_state_dict_shapes.json").read_text())
    (key,) = [k for k in layouts if k.split("/")[1].startswith(layout)]
    state = {name: torch.zeros(shape) for name, shape in layouts[key]["state_dict"].items()}
    model = import_checkpoint(state, "lic_tcm:tcm" if key.startswith("lic_tcm") else "compressai:" + layout.split()[0])
    assert model.num_parameters() == layouts[key]["params"]
    assert model.padding_multiple == 64 and model.stage_count == 6


def test_lic_tcm_transforms_reproduce_lic_tcm(conformance):
    """Transforms-only TCM fixture (LIC_TCM's own code): y = g_a(x), x_hat = g_s(round(y)) within 1e-4."""
    folder = conformance / "lic_tcm-transforms-N32"
    state = load_file(str(folder / "weights.safetensors"))
    expected = load_file(str(folder / "expected.safetensors"))
    model = import_checkpoint(state, "lic_tcm:tcm", partial=True)
    transform_parameters = sum(v.numel() for k, v in state.items() if not k.endswith(("pedestal", "bound")))
    assert sum(p.numel() for n, p in model.named_parameters() if n.startswith(("g_a.", "g_s."))) == transform_parameters
    report = compare(model, expected)
    assert report["y_max_abs"] < 1e-4 and report["x_hat_max_abs"] < 1e-4


def test_checkpoint_forms_users_hold(conformance, tmp_path):
    """{"state_dict": ...}, DataParallel's module. prefix, pre-1.2.7 names, a pickled .pth.tar: one model."""
    folder = conformance / "mbt2018-mean-N64-M96"
    reference = import_checkpoint(folder / "weights.safetensors", "compressai:mbt2018-mean")
    state = load_file(str(folder / "weights.safetensors"))
    old = {
        "module."
        + re.sub(
            r"\.(matrices|biases|factors)\.(\d)$",
            lambda m: f"._{ {'matrices': 'matrix', 'biases': 'bias', 'factors': 'factor'}[m[1]] }{m[2]}",
            k,
        ): v
        for k, v in state.items()
    }
    assert "module.entropy_bottleneck._matrix0" in old
    torch.save({"epoch": 3, "state_dict": old}, tmp_path / "checkpoint_best_loss.pth.tar")
    model = import_checkpoint(tmp_path / "checkpoint_best_loss.pth.tar", "compressai:mbt2018-mean")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


class _Exploit:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_never_run(tmp_path, capsys):
    torch.save({"state_dict": {"g_a.0.weight": torch.zeros(1)}, "payload": _Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(ImportFailed, match="not a readable checkpoint"):
        read_state_dict(tmp_path / "evil.pth")
    assert "pickled code ran" not in capsys.readouterr().out


def test_layouts_that_do_not_fit_name_the_key(conformance):
    state = load_file(str(conformance / "mbt2018-mean-N64-M96" / "weights.safetensors"))
    with pytest.raises(ImportFailed, match="mean-scale .* not bmshj2018-hyperprior"):
        import_checkpoint(state, "compressai:bmshj2018-hyperprior")
    with pytest.raises(ImportFailed, match=r"key 'h_s\.9\.weight' does not fit"):
        import_checkpoint({**state, "h_s.9.weight": torch.zeros(1)}, "compressai:mbt2018-mean")
    with pytest.raises(ImportFailed, match=r"expected key 'g_a\.1\.beta' is missing"):
        import_checkpoint({k: v for k, v in state.items() if k != "g_a.1.beta"}, "compressai:mbt2018-mean")
    with pytest.raises(ImportFailed, match="--partial takes only g_a"):
        import_checkpoint(state, "compressai:mbt2018-mean", partial=True)
    transforms = {k: v for k, v in state.items() if k.startswith(("g_a.", "g_s."))}
    partial = import_checkpoint(transforms, "compressai:mbt2018-mean", partial=True)
    assert torch.equal(partial.g_a.stages[0].resample.weight, state["g_a.0.weight"])
    with pytest.raises(kdic.ConfigError, match="unknown import source"):
        import_checkpoint(state, "compressai:nope")


def test_imported_teacher_is_an_ordinary_kdic_model(tmp_path, kodak_dir):
    """kdic import, then eval with real bitstreams reproduces CompressAI's own Kodak evaluation (first
    4 images: PSNR within 0.01 dB, real bpp within 2%); compress/decompress work on files."""
    if not PRETRAINED.is_dir():
        pytest.skip(f"pretrained CompressAI teacher not found at {PRETRAINED}")
    weights = tmp_path / "mbt.safetensors"
    run = run_kdic
    done = run(
        "import",
        str(PRETRAINED / "weights.safetensors"),
        "-o",
        str(weights),
        "--from",
        "compressai:mbt2018-mean",
        "--lmbda",
        "0.013",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    done = run(
        "eval",
        "--weights",
        str(weights),
        "--data",
        str(kodak_dir),
        "--limit",
        "4",
        "-o",
        str(tmp_path / "r.json"),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    peer = json.loads((PRETRAINED / "kodak.json").read_text())["per_image"][:4]
    ours = json.loads((tmp_path / "r.json").read_text())["results"]
    assert abs(ours["psnr-rgb"][0] - np.mean([r["psnr_rgb"] for r in peer])) < 0.01
    assert abs(ours["bpp"][0] / np.mean([r["bpp"] for r in peer]) - 1) < 0.02
    image = sorted(kodak_dir.glob("*.png"))[0]
    assert (
        run("compress", str(image), "--weights", str(weights), "-o", str(tmp_path / "a.kdic"), "--quiet").returncode
        == 0
    )
    done = run(
        "decompress", str(tmp_path / "a.kdic"), "--weights", str(weights), "-o", str(tmp_path / "a.png"), "--quiet"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.png").stat().st_size > 0


def test_an_imported_teacher_distills_with_every_strategy_path(conformance, tmp_path):
    """The worked example in miniature: import, derive a half-MACs student, SMoDi and prune-finetune
    for a few steps each, then code a real file with the student."""
    from kdic.bench.complexity import count_complexity
    from kdic.data import SAMPLES_DIR

    teacher = tmp_path / "teacher.safetensors"
    source = conformance / "mbt2018-mean-N64-M96" / "weights.safetensors"
    assert (
        kdic.cli.main(
            [
                "import",
                str(source),
                "-o",
                str(teacher),
                "--from",
                "compressai:mbt2018-mean",
                "--lmbda",
                "0.013",
                "--quiet",
            ]
        )
        == 0
    )
    for strategy in ("smodi", "prune-finetune"):
        run = tmp_path / strategy
        assert (
            kdic.cli.main(
                [
                    "distill",
                    "--teacher",
                    str(teacher),
                    "--strategy",
                    strategy,
                    "--data",
                    str(SAMPLES_DIR),
                    "--run-dir",
                    str(run),
                    "--steps",
                    "8",
                    "--batch-size",
                    "1",
                    "--crop",
                    "64",
                    "--quiet",
                ]
            )
            == 0
        )
    phases = [p["name"] for p in json.loads((tmp_path / "smodi" / "summary.json").read_text())["phases"]]
    assert phases == [f"stage{k}" for k in range(1, 7)] + ["finetune"]  # no context model: stages, then fine-tune
    student = kdic.load(tmp_path / "smodi" / "model.safetensors")
    ratio = (
        count_complexity(student, (1, 3, 512, 768)).macs_total
        / count_complexity(kdic.load(teacher), (1, 3, 512, 768)).macs_total
    )
    assert 0.4 < ratio < 0.55
    assert (
        kdic.cli.main(
            [
                "energy",
                "--weights",
                str(teacher),
                str(tmp_path / "smodi" / "model.safetensors"),
                "--data",
                str(SAMPLES_DIR),
                "-o",
                str(tmp_path / "energy.json"),
                "--quiet",
            ]
        )
        == 0
    )
    energy = json.loads((tmp_path / "energy.json").read_text())["models"]
    assert [e["features"]["stage1"]["channels"] for e in energy] == [64, 40]
    image = sorted(SAMPLES_DIR.glob("*.png"))[0]
    args = ["--weights", str(tmp_path / "smodi" / "model.safetensors"), "--quiet"]
    assert kdic.cli.main(["compress", str(image), "-o", str(tmp_path / "s.kdic"), *args]) == 0
    assert kdic.cli.main(["decompress", str(tmp_path / "s.kdic"), "-o", str(tmp_path / "s.png"), *args]) == 0


@pytest.mark.parametrize(
    "fixture, strategies",
    [
        ("mbt2018-mean-N64-M96", ("vanilla", "e2e-feature", "two-stage", "stagewise-explicit")),
        ("elic2022-official-N64-M128", ("smodi", "stagewise-explicit")),
    ],
)
def test_every_strategy_runs_on_imported_teachers(conformance, fixture, strategies):
    """One step per phase on a derived student of an imported teacher (the teacher is never changed)."""
    from dataclasses import replace

    from kdic.data import SAMPLES_DIR
    from kdic.distill import build_distillation, derive_student, load_strategy
    from kdic.train.data import CropDataset
    from kdic.train.engine import TrainConfig, Trainer

    teacher = import_checkpoint(conformance / fixture / "weights.safetensors", SOURCES[fixture])
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = derive_student(teacher.config, "student")
    config = TrainConfig(lmbda=0.013, steps=1, batch_size=1, crop=64)
    for name in strategies:
        module, phases = build_distillation(teacher, student, load_strategy(name), 4 * 12)
        for phase in phases:
            Trainer(
                module, [replace(phase, steps=1)], config, None, CropDataset(SAMPLES_DIR, 64, seed=0), quiet=True
            ).run()
        module.assemble()
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
