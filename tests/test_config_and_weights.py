"""Config validation, dict round trips, and safetensors weights that rebuild the model on their own."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

import kdic
from kdic.errors import CheckpointError, ConfigError
from kdic.models import (
    ModelConfig,
    SCCTXConfig,
    StageConfig,
    available,
    build_model,
    config_from_dict,
    get_config,
    to_dict,
)


@pytest.mark.parametrize("name", available())
def test_config_dict_round_trip(name):
    config = get_config(name)
    assert config_from_dict(json.loads(json.dumps(to_dict(config)))) == config


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown model preset 'kdic-huge'.*s2c-hybrid"):
        get_config("kdic-huge")


def test_latent_channels_must_exceed_group_sum():
    base = get_config("kdic")
    with pytest.raises(
        ConfigError, match=r"M=100 must exceed the sum of the leading channel groups \[16, 16, 32, 64\] = 128"
    ):
        replace(base, transform=replace(base.transform, latent_channels=100))


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(block="mamba"), "unknown block kind 'mamba'"),
        (dict(depth=-1), "depth must be >= 0"),
        (dict(channels=100, heads=8), "not divisible by 8 heads"),
        (dict(expansion=0.0), "expansion must be > 0"),
    ],
)
def test_invalid_stage_values_are_named(bad, message):
    with pytest.raises(ConfigError, match=message):
        StageConfig(**{"block": "s2c-attn", "depth": 2, "channels": 64, **bad})


def test_config_from_dict_reports_unknown_and_mistyped_fields():
    data = to_dict(get_config("kdic-tiny"))
    data["entropy"]["context_expnasion"] = 2
    with pytest.raises(ConfigError, match="config.entropy: unknown field.*context_expnasion"):
        config_from_dict(data)
    data = to_dict(get_config("kdic-tiny"))
    data["transform"]["encoder"][0]["depth"] = "three"
    with pytest.raises(ConfigError, match=r"config.transform.encoder\[0\].depth: expected int"):
        config_from_dict(data)


def test_custom_config_builds_without_code_changes():
    stage = StageConfig("nafnet", 1, 16, expansion=2)
    config = ModelConfig(
        "my-naf",
        kdic.models.TransformConfig(64, (stage,) * 3, (stage,) * 3),
        SCCTXConfig(hyper_channels=16, groups=(4, 4, 8, 16)),
    )
    model = build_model(config).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64))["x_hat"].shape == (1, 3, 64, 64)


@pytest.mark.parametrize("name", ["kdic-tiny", "s2c-hybrid-tiny"])
def test_weights_round_trip_gives_identical_outputs(tmp_path, kodak_sample, name):
    torch.manual_seed(1)
    model = build_model(name).eval()
    path = kdic.save(model, tmp_path / "model.safetensors", lmbda=0.0067, extra={"note": "test"})
    loaded = kdic.load(path)
    x = kodak_sample[..., :192, :256]
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a["x_hat"], b["x_hat"])
    assert torch.equal(a["likelihoods"]["y"], b["likelihoods"]["y"])
    assert loaded.config == model.config and loaded.lmbda == 0.0067 and not loaded.training
    metadata = kdic.read_metadata(path)
    assert metadata["kdic_version"] == kdic.__version__ and metadata["extra"] == {"note": "test"}
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_weights_that_do_not_match_their_config_are_refused(tmp_path):
    model = build_model("kdic-tiny")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = kdic.read_metadata(kdic.save(model, tmp_path / "ok.safetensors"))
    metadata["config"] = to_dict(get_config("s2c-hybrid-tiny"))
    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"kdic": json.dumps(metadata)})
    with pytest.raises(CheckpointError, match="weights do not match the model config:.*file has"):
        kdic.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is not a safetensors weights file"),
        (b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ", "is not a safetensors weights file|no kdic metadata"),
    ],
)
def test_broken_files_are_refused(tmp_path, content, message):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        kdic.load(path)


def test_missing_file_and_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        kdic.load(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="output folder .* does not exist"):
        kdic.save(build_model("kdic-tiny"), tmp_path / "missing" / "w.safetensors")
