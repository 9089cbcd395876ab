"""Variable rate (issue 13): gain units, one weights file coded at any lambda of its range."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import kdic
from kdic.checkpoint import read_metadata, save
from kdic.cli import main
from kdic.codec import decode_bytes, encode_image, read_image, unpack
from kdic.codec.bitstream import pack
from kdic.codec.target import MAX_PASSES, code_at_target
from kdic.configs import bundled_names
from kdic.data import DEFAULT_QUALITY, bundled_weights, quality_lmbda, sample_image_path
from kdic.errors import BitstreamError, ConfigError
from kdic.models import LearnedImageCodec, VariableRateConfig, config_from_dict, get_config, to_dict, with_variable_rate
from kdic.models.config import DEFAULT_ANCHORS
from kdic.models.rate import GainUnits
from kdic.train.data import CropDataset
from kdic.train.engine import STATE_FILE, Phase, TrainConfig, Trainer
from kdic.train.losses import phase_loss

from .helpers import FIXED_RATE_WEIGHTS, train_killed_then_resumed, train_tiny

FIXTURES = Path(__file__).parent / "fixtures" / "format3"
SAMPLES = Path(kdic.__file__).parent / "data" / "samples"
LOW, HIGH = DEFAULT_ANCHORS[0], DEFAULT_ANCHORS[-1]


@pytest.fixture(scope="module")
def model() -> LearnedImageCodec:
    torch.manual_seed(0)
    return LearnedImageCodec(with_variable_rate(get_config("kdic-tiny"))).eval()


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory) -> Path:
    return save(model, tmp_path_factory.mktemp("vr") / "vr.safetensors")


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return read_image(sample_image_path())[192:320, 320:448]  # 128 x 128, textured


# -- config -------------------------------------------------------------------------------------
def test_config_round_trip_and_fixed_rate_configs_unchanged():
    config = with_variable_rate(get_config("s2c-hybrid-tiny"), (0.001, 0.01, 0.2))
    assert config.name == "s2c-hybrid-tiny-vr" and config.variable_rate.range == (0.001, 0.2)
    assert config_from_dict(json.loads(json.dumps(to_dict(config)))) == config
    fixed = get_config("kdic-tiny")
    assert "variable_rate" not in to_dict(fixed)  # existing weights files describe themselves as before
    assert config_from_dict({**to_dict(fixed), "variable_rate": None}) == fixed
    assert len(VariableRateConfig().lmbdas) == 11 and VariableRateConfig().range == (0.000569, 0.178)
    for preset in ("tcm-kd", "kdic"):  # slice and SCCTX entropy models alike (on the meta device: no memory)
        with torch.device("meta"):
            vr = LearnedImageCodec(with_variable_rate(get_config(preset))).state_dict()
            fixed_state = LearnedImageCodec(get_config(preset)).state_dict()
        assert set(vr) - set(fixed_state) == {"rate.log_gain", "rate.log_inverse_gain"}
        assert vr["rate.log_gain"].shape == (11, get_config(preset).transform.latent_channels)


@pytest.mark.parametrize(
    "lmbdas, method, message",
    [
        ((0.01, 0.001), "gain", "strictly increasing"),
        ((0.01, 0.01), "gain", "strictly increasing"),
        ((0.01,), "gain", "number of anchor lambdas"),
        (tuple(0.001 * (i + 1) for i in range(17)), "gain", "number of anchor lambdas"),
        ((0.0, 0.01), "gain", "anchor lambda"),
        ((0.001, math.nan), "gain", "anchor lambda"),
        ((0.001, math.inf), "gain", "anchor lambda"),
        ((0.001, 2.0), "gain", "anchor lambda"),
        ((0.001, 0.01), "qvrf", "unknown rate method"),
    ],
)
def test_config_validation(lmbdas, method, message):
    with pytest.raises(ConfigError, match=message):
        VariableRateConfig(lmbdas, method)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(
            {**to_dict(get_config("kdic-tiny")), "variable_rate": {"lmbdas": list(lmbdas), "method": method}}
        )


def test_fixed_rate_weights_of_kdic_0_1_and_their_bitstreams_unchanged():
    """kdic 0.1's shipped files carry no variable_rate key, load as fixed-rate, and still decode their fixtures."""
    fixed_rate = sorted(FIXED_RATE_WEIGHTS.glob("*-q?.safetensors"))
    assert len(fixed_rate) == 8
    for path in fixed_rate:
        assert "variable_rate" not in read_metadata(path)["config"]
    expected = json.loads((FIXTURES / "expected.json").read_text())["kodim23-teacher-q4"]
    teacher = kdic.load(FIXED_RATE_WEIGHTS / expected["weights"])
    assert not teacher.variable_rate and teacher.lmbda is not None
    image, _ = decode_bytes(teacher, (FIXTURES / "kodim23-teacher-q4.kdic").read_bytes())
    reference = read_image(FIXTURES / "kodim23-teacher-q4.png")
    assert np.abs(image.astype(np.int16) - reference).max() <= 1


# -- gain units ---------------------------------------------------------------------------------
def test_interpolation_hits_the_anchors_and_is_monotone():
    units = GainUnits(6, DEFAULT_ANCHORS)
    with torch.no_grad():  # trained-like tables: per channel increasing gains, decreasing inverse gains
        units.log_gain.copy_(torch.rand(len(DEFAULT_ANCHORS), 6).cumsum(0))
        units.log_inverse_gain.copy_(-torch.rand(len(DEFAULT_ANCHORS), 6).cumsum(0))
    for k, lmbda in enumerate(DEFAULT_ANCHORS):
        assert torch.equal(units.gain(lmbda).flatten(), units.log_gain[k].double().exp().float())
        assert torch.equal(units.inverse_gain(lmbda).flatten(), units.log_inverse_gain[k].double().exp().float())
    grid = np.geomspace(LOW, HIGH, 200)
    gains = torch.stack([units.gain(float(v)).flatten() for v in grid])
    inverse = torch.stack([units.inverse_gain(float(v)).flatten() for v in grid])
    assert (gains.diff(dim=0) >= 0).all() and (inverse.diff(dim=0) <= 0).all()
    fresh = GainUnits(4, DEFAULT_ANCHORS)  # the initialisation: gain (lambda / lambda_ref)^0.5, inverse 1 / gain
    assert torch.allclose(fresh.gain(0.01) * fresh.inverse_gain(0.01), torch.ones(1, 4, 1, 1))
    assert torch.allclose(fresh.gain(0.04) / fresh.gain(0.01), torch.full((1, 4, 1, 1), 2.0))


@pytest.mark.parametrize("lmbda", [0.95 * LOW, 1.05 * HIGH, math.nan, -1.0, True])
def test_lambda_outside_the_range_is_refused(model, lmbda):
    with pytest.raises(ConfigError, match=f"outside this model's range {LOW:g} to {HIGH:g}"):
        model.check_lmbda(lmbda)


def test_lambda_required_by_variable_rate_and_refused_by_fixed_rate(model):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ConfigError, match="is variable-rate: pass a lambda"):
        model(x)
    with pytest.raises(ConfigError, match="is fixed-rate"):
        kdic.build_model("kdic-tiny")(x, 0.013)
    with pytest.raises(ConfigError, match="is variable-rate"):
        encode_image(model, np.zeros((64, 64, 3), np.uint8))


# -- coding -------------------------------------------------------------------------------------
def test_coding_at_any_lambda_is_bit_exact_and_recorded(model):
    image = read_image(sample_image_path())[:128, :256]
    for lmbda in (LOW, 0.00731, HIGH):
        data, reconstruction, _ = encode_image(model, image, lmbda=lmbda, entropy_tile=8)  # two entropy tiles
        header, streams = unpack(data)
        assert header.lmbda == float(np.float32(lmbda)) and len(streams) == 4
        decoded, _ = decode_bytes(model, data)
        assert np.array_equal(decoded, reconstruction)
    edited = pack(replace(header, lmbda=float(np.float32(0.02))), streams)  # a different rate in the header
    with pytest.raises(BitstreamError, match="does not match"):
        decode_bytes(model, edited)
    outside = pack(replace(header, lmbda=0.5), streams)
    with pytest.raises(BitstreamError, match="outside this model's range"):
        decode_bytes(model, outside)


def test_rate_falls_as_lambda_falls_from_the_initialisation(model, crop):
    """Measured: untrained gain units already order the rates (the init scales the quantization step)."""
    sizes = [
        len(encode_image(model, crop, estimate=False, reconstruct=False, lmbda=v)[0])
        for v in model.config.variable_rate.spread(6)
    ]
    assert sizes == sorted(sizes) and sizes[-1] > 4 * sizes[0]


def test_target_bpp_lands_just_under_the_target(model, crop):
    ends = [
        8 * len(encode_image(model, crop, estimate=False, reconstruct=False, lmbda=v)[0]) / crop[..., 0].size
        for v in (LOW, HIGH)
    ]
    target = math.sqrt(ends[0] * ends[1])
    result = code_at_target(model, crop, "bpp", target)
    assert result.met and 0.97 * target <= result.value <= target and result.passes <= MAX_PASSES
    assert unpack(result.data)[0].lmbda == result.lmbda
    quick = code_at_target(model, crop, "bpp", 0.3)  # false position: 5 passes here, bisection took 11
    assert quick.met and 0.99 * 0.3 <= quick.value <= 0.3 and quick.passes <= 6
    unreachable = code_at_target(model, crop, "bpp", ends[0] / 2)
    assert not unreachable.met and unreachable.lmbda == float(np.float32(LOW)) and unreachable.passes == 2


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_compress_eval_and_info(weights, tmp_path, capsys):
    image = tmp_path / "crop.png"
    from kdic.codec import write_png

    write_png(read_image(sample_image_path())[:64, :64], image)
    out = tmp_path / "a.kdic"
    assert main(["compress", str(image), "-o", str(out), "--weights", str(weights), "--lmbda", "0.02", "--quiet"]) == 0
    assert unpack(out.read_bytes())[0].lmbda == float(np.float32(0.02))
    capsys.readouterr()
    assert main(["compress", str(image), "-o", str(out), "--weights", str(weights), "--lmbda", "0.25", "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"outside this model's range {LOW:g} to {HIGH:g}" in err
    assert main(["compress", str(image), "-o", str(out), "--weights", str(weights), "--force", "--quiet"]) == 0
    assert unpack(out.read_bytes())[0].lmbda == float(np.float32(quality_lmbda(DEFAULT_QUALITY)))  # the default
    fixed = FIXED_RATE_WEIGHTS / "kdic-tiny-q3.safetensors"
    assert main(["compress", str(image), "-o", str(out), "--weights", str(fixed), "--lmbda", "0.02", "--force"]) == 2
    assert "needs variable-rate weights" in capsys.readouterr().err
    assert main(["info", str(weights)]) == 0
    assert f"{LOW:g} to {HIGH:g} (variable rate" in capsys.readouterr().out
    result = tmp_path / "curve.json"
    assert main(["eval", "--weights", str(weights), "--data", str(tmp_path), "-o", str(result), "--quiet"]) == 0
    curve = json.loads(result.read_text())
    assert len(curve["results"]["bpp"]) == 8 and curve["results"]["bpp"] == sorted(curve["results"]["bpp"])
    assert curve["meta"]["lmbda"][0] == pytest.approx(LOW) and curve["meta"]["lmbda"][-1] == pytest.approx(HIGH)


# -- training -----------------------------------------------------------------------------------
VR_CONFIG = TrainConfig(
    lmbda=None, steps=6, batch_size=2, crop=64, checkpoint_every=3, log_every=1, lmbda_range=(LOW, HIGH)
)


def _vr_trainer(run_dir: Path) -> tuple[torch.nn.Module, Trainer]:
    torch.manual_seed(0)
    model = LearnedImageCodec(with_variable_rate(get_config("kdic-tiny")))
    return model, Trainer(
        model,
        [Phase("p", VR_CONFIG.steps, [""], phase_loss())],
        VR_CONFIG,
        run_dir,
        CropDataset(SAMPLES, VR_CONFIG.crop, seed=0),
        quiet=True,
    )


def test_lambda_sampling_is_log_uniform_and_a_function_of_the_step():
    draws = [VR_CONFIG.lmbda_at(step) for step in range(2000)]
    assert draws[:5] == [VR_CONFIG.lmbda_at(step) for step in range(5)]
    assert min(draws) >= LOW and max(draws) <= HIGH
    middle = math.sqrt(LOW * HIGH)
    assert 0.45 < np.mean([d < middle for d in draws]) < 0.55  # log-uniform: half below the geometric middle
    assert TrainConfig(lmbda=0.013, steps=1).lmbda_at(7) == 0.013
    with pytest.raises(ConfigError):
        TrainConfig(lmbda=None, steps=1)


def test_variable_rate_resume_is_exact(tmp_path):
    reference, trainer = _vr_trainer(tmp_path / "a")
    trainer.run()
    resumed = train_killed_then_resumed(_vr_trainer, tmp_path / "b", 5)  # during step 5, after the checkpoint at 3
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(reference.rate.log_gain, LearnedImageCodec(reference.config).rate.log_gain)  # gains trained
    logged = [row.split(",")[-1] for row in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]]
    assert [float(v) for v in logged] == pytest.approx([VR_CONFIG.lmbda_at(s) for s in range(6)])


def test_a_parked_run_resumes_on_a_fresh_machine(tmp_path):
    """scripts/park_run.py keeps weights, RNG states and position (not Adam's moments): the run restored
    in another folder goes on with the same data and lambdas to the same last step."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "park_run.py"

    def carry(run_dir: Path) -> Path:
        for action, src, dst in (
            ("park", run_dir, tmp_path / "parked"),
            ("restore", tmp_path / "parked", tmp_path / "c"),
        ):
            done = subprocess.run(
                [sys.executable, str(script), action, str(src), str(dst)], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
        assert (tmp_path / "parked" / "state.safetensors").stat().st_size < (run_dir / STATE_FILE).stat().st_size / 2
        return tmp_path / "c"

    reference, trainer = _vr_trainer(tmp_path / "a")
    trainer.run()
    resumed = train_killed_then_resumed(_vr_trainer, tmp_path / "b", 5, move=carry)
    logged = [float(row.split(",")[-1]) for row in (tmp_path / "c" / "log.csv").read_text().splitlines()[1:]]
    assert logged == pytest.approx([VR_CONFIG.lmbda_at(s) for s in range(6)])
    assert not torch.equal(resumed.rate.log_gain, reference.rate.log_gain)  # Adam restarted at step 3: close, not equal
    assert float((resumed.rate.log_gain - reference.rate.log_gain).detach().abs().max()) < 0.05


def test_kdic_train_variable_rate_cli(tmp_path):
    run = tmp_path / "run"
    options = "--variable-rate --lmbdas 0.002 0.01 0.05 --steps 2 --batch-size 1 --crop 64"
    assert train_tiny(SAMPLES, run, options, "--val", str(SAMPLES)) == 0
    metadata = read_metadata(run / "model.safetensors")
    assert metadata["config"]["variable_rate"]["lmbdas"] == [0.002, 0.01, 0.05] and metadata["lmbda"] is None
    validation = json.loads((run / "summary.json").read_text())["validation"]
    assert {"bpp@0.002", "bpp@0.01", "bpp@0.05", "psnr@0.01"} <= set(validation)
    assert (
        main(
            [
                "train",
                "--model",
                "kdic-tiny",
                "--data",
                str(SAMPLES),
                "--run-dir",
                str(tmp_path / "r2"),
                "--steps",
                "1",
                "--quiet",
            ]
        )
        == 2
    )  # fixed-rate without --lmbda


@pytest.fixture(scope="module")
def vr_teacher() -> LearnedImageCodec:
    torch.manual_seed(0)
    teacher = LearnedImageCodec(with_variable_rate(get_config("s2c-hybrid-tiny"))).eval()
    with torch.no_grad():
        teacher.rate.log_gain.add_(0.1 * torch.randn_like(teacher.rate.log_gain))  # as if trained: not the init
    return teacher


def test_derived_student_is_variable_rate_and_inherits_the_gain_units(vr_teacher):
    from kdic.distill import build_distillation, derive_student, load_strategy

    student = derive_student(vr_teacher.config, "kdic-tiny-vr", stage1_channels=16)
    assert student.variable_rate == vr_teacher.config.variable_rate
    module, _ = build_distillation(vr_teacher, student, load_strategy("smodi"), 40, teacher_init=True)
    assert torch.equal(module.student.rate.log_gain, vr_teacher.rate.log_gain)
    with pytest.raises(ConfigError, match="share one variable-rate config"):
        build_distillation(vr_teacher, get_config("kdic-tiny"), load_strategy("smodi"), 40)


@pytest.mark.parametrize("strategy", bundled_names("strategies"))
def test_every_strategy_runs_on_a_variable_rate_pair(vr_teacher, strategy):
    """One step per phase, each at its own sampled lambda; the teacher is never touched."""
    from kdic.distill import build_distillation, derive_student, load_strategy

    teacher_before = {k: v.clone() for k, v in vr_teacher.state_dict().items()}
    spec = load_strategy(strategy)
    student = derive_student(vr_teacher.config, "kdic-tiny-vr", stage1_channels=16)
    module, phases = build_distillation(vr_teacher, student, spec, 4 * 9)
    config = replace(VR_CONFIG, steps=1, batch_size=1)
    for phase in phases:
        before = {k: v.clone() for k, v in module.state_dict().items()}
        summary = Trainer(
            module, [replace(phase, steps=1)], config, None, CropDataset(SAMPLES, 64, seed=0), quiet=True
        ).run()
        assert summary["global_step"] == 1
        assert any(not torch.equal(v, before[k]) for k, v in module.state_dict().items()), phase.name
    assert all(torch.equal(v, teacher_before[k]) for k, v in vr_teacher.state_dict().items())


def test_variable_rate_model_starts_from_fixed_rate_weights():
    """--init of a fixed-rate file: same weights, gain units centred on its lambda, so it codes there as before."""
    from kdic.train.setup import init_from

    fixed = kdic.load(FIXED_RATE_WEIGHTS / "kdic-tiny-q3.safetensors")
    vr = LearnedImageCodec(with_variable_rate(fixed.config)).eval()
    init_from(vr, fixed, "q3")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(vr(x, fixed.lmbda)["x_hat"], fixed(x)["x_hat"], atol=1e-6)
        assert vr(x, 0.05)["likelihoods"]["y"].log().sum() < vr(x, 0.005)["likelihoods"]["y"].log().sum()  # more bits
    with pytest.raises(kdic.KdicError, match="or its fixed-rate version"):
        init_from(LearnedImageCodec(with_variable_rate(get_config("s2c-hybrid-tiny"))), fixed, "q3")


@pytest.mark.parametrize("size", [(64, 64), (128, 192)])
def test_replicate_padding_keeps_a_flat_image_flat_in_the_latent(size):
    """With padding "replicate" the analysis sees no dark frame: a flat image gives a flat latent (up to
    float rounding in attention), where zero padding makes the border latents differ; the checkerboard
    context pads by reflection, which keeps the anchor pattern across the border."""
    torch.manual_seed(0)
    config = replace(with_variable_rate(get_config("s2c-hybrid-tiny")), padding="replicate")
    assert "padding" not in to_dict(replace(config, padding="zeros"))  # the shipped configs read as before
    assert config_from_dict(to_dict(config)) == config
    model = LearnedImageCodec(config).eval()
    assert {m.padding_mode for m in model.latent_codec.spatial_context} == {"reflect"}
    zeros = LearnedImageCodec(replace(config, padding="zeros")).eval()
    zeros.load_state_dict(model.state_dict())
    x = torch.full((1, 3, *size), 230 / 255)
    with torch.no_grad():
        spread = {
            name: float((m.g_a(x).amax(dim=(2, 3)) - m.g_a(x).amin(dim=(2, 3))).max())
            for name, m in (("replicate", model), ("zeros", zeros))
        }
    assert spread["replicate"] < 1e-5 < 1e-2 < spread["zeros"]


def test_a_variable_rate_model_reanchored_over_a_wider_range_codes_its_old_range_as_before():
    """--init of a variable-rate file with other --lmbdas: the old anchors keep their gains, so the old
    range codes as before, and an anchor one segment below the old range continues its first segment."""
    from kdic.train.setup import init_from

    old = kdic.load(bundled_weights("student"))
    ratio = old.rate.lmbdas[1] / old.rate.lmbdas[0]
    wider = (old.rate.lmbdas[0] / ratio, *old.rate.lmbdas, old.rate.lmbdas[-1] * ratio)
    new = LearnedImageCodec(with_variable_rate(old.config, wider)).eval()
    init_from(new, old, "student")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        lmbda = 0.013
        assert torch.equal(new(x, lmbda)["x_hat"], old(x, lmbda)["x_hat"])
        expected = 2 * old.rate.log_gain[0].double() - old.rate.log_gain[1].double()
        assert torch.allclose(new.rate.log_gain[0].double(), expected, atol=1e-6)
        fewer_bits = new(x, wider[0])["likelihoods"]["y"].log().sum()
        assert fewer_bits > old(x, old.rate.lmbdas[0])["likelihoods"]["y"].log().sum()
    with pytest.raises(kdic.KdicError, match="other anchor lambdas"):
        init_from(LearnedImageCodec(with_variable_rate(get_config("s2c-hybrid-tiny"), wider)), old, "student")


# -- lambda-conditioned modulation ("modulated" rate method) --------------------------------------
def test_modulated_model_from_gain_weights_writes_the_same_files_until_its_tables_move(crop):
    """Modulation tables start at identity: gain-unit weights loaded into a modulated config code
    byte-identical payloads (the header's weights digest differs); a moved table changes the coding
    at its lambda, and only there."""
    from kdic.train.setup import init_from

    gain = kdic.load(bundled_weights("student"))
    config = with_variable_rate(gain.config, method="modulated")
    assert config_from_dict(to_dict(config)) == config and config.variable_rate.method == "modulated"
    modulated = LearnedImageCodec(config).eval()
    init_from(modulated, gain, "student")
    anchors, hidden = len(config.variable_rate.lmbdas), [out for _, out in config.transform.stage_widths]
    encoder_stages = len(config.transform.encoder)
    tables = modulated.rate.tables()
    assert tables["encoder_log_scale.0"].shape == (anchors, hidden[0])
    assert tables["decoder_shift.0"].shape == (anchors, hidden[encoder_stages])
    assert len([name for name in tables if name.startswith("decoder_shift.")]) == len(config.transform.decoder) - 1

    def payload(model: LearnedImageCodec, lmbda: float) -> list[bytes]:
        return unpack(encode_image(model, crop, lmbda=lmbda)[0])[1]

    for lmbda in (0.0007, 0.013, 0.17):
        assert payload(modulated, lmbda) == payload(gain, lmbda)
    with torch.no_grad():
        modulated.rate.encoder_shift[0][-1].fill_(0.05)  # the top anchor only
        modulated.rate.decoder_shift[0][-1].fill_(0.05)
    low, high = config.variable_rate.lmbdas[0], config.variable_rate.lmbdas[-1]
    assert payload(modulated, low) == payload(gain, low)
    data, decoded, _ = encode_image(modulated, crop, lmbda=high)
    assert unpack(data)[1] != payload(gain, high)
    assert np.array_equal(decode_bytes(modulated, data)[0], decoded)  # its own files decode exactly


def test_teacher_guided_student_carries_the_modulation_tables(vr_teacher):
    from kdic.distill import build_distillation, derive_student, load_strategy

    torch.manual_seed(1)
    teacher = LearnedImageCodec(with_variable_rate(vr_teacher.config, method="modulated")).eval()
    with torch.no_grad():
        for table in teacher.rate.tables().values():
            table.add_(0.1 * torch.randn_like(table))
    student = derive_student(teacher.config, "kdic-tiny-vr", stage1_channels=16)
    assert student.variable_rate == teacher.config.variable_rate
    module, _ = build_distillation(teacher, student, load_strategy("smodi"), 40, teacher_init=True)
    for name, table in module.student.rate.tables().items():
        theirs = teacher.rate.tables()[name]
        assert torch.equal(table, theirs[:, : table.shape[1]]), name


def test_unknown_rate_method_is_one_line(tmp_path, capsys):
    argv = ["train", "--model", "kdic-tiny", "--variable-rate", "--rate-method", "film", "--data", str(SAMPLES)]
    assert main([*argv, "--run-dir", str(tmp_path / "run"), "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "film" in err and "modulated" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
