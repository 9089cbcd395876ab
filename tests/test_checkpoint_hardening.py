"""Weights files are untrusted input: every malformed file is one CheckpointError, raised fast and
before anything large is allocated (issue 16). Each case is a real safetensors file on disk."""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import kdic
from kdic.checkpoint import read_config
from kdic.cli import main
from kdic.configs import CONFIG_DIR, bundled_names
from kdic.data import WEIGHTS_DIR
from kdic.distill import load_strategy
from kdic.errors import CheckpointError, ConfigError
from kdic.models import available, build_model, config_from_dict, get_config, to_dict, with_variable_rate
from kdic.models.config import MAX_CHANNELS, NAME_PATTERN

from .helpers import FIXED_RATE_WEIGHTS

MAX_CPU_SECONDS = 1.0
MAX_RSS_GROWTH_MB = 200
HOSTILE_DEPTH = 100_000  # JSON nesting that overflows a recursive parser


def _tensors() -> dict[str, torch.Tensor]:
    """kdic-tiny's weights in float16, as shipped (half the bytes to write per case)."""
    torch.manual_seed(0)
    return {k: v.half().contiguous() for k, v in build_model("kdic-tiny").state_dict().items()}


TENSORS = _tensors()
METADATA = {
    "format": "kdic-weights",
    "format_version": 1,
    "kdic_version": kdic.__version__,
    "config": to_dict(get_config("kdic-tiny")),
    "lmbda": 0.0067,
    "extra": {},
}


def _with(change: Callable[[dict[str, Any]], Any]) -> str:
    """The valid metadata as JSON after ``change`` edits a copy of it in place."""
    metadata = json.loads(json.dumps(METADATA))
    change(metadata)
    return json.dumps(metadata)


def _set(*keys: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(metadata: dict[str, Any]) -> None:
        target = metadata
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


VALID = _with(lambda metadata: None)


def _delete(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda metadata: metadata.pop(key)


def _replace(old: str, new: str) -> str:
    """JSON text that ``json.dumps`` cannot write (NaN/inf literals, overlong numbers)."""
    assert old in VALID
    return VALID.replace(old, new, 1)


def _nested(depth: int) -> str:
    return '{"format": "kdic-weights", "config": ' + "[" * depth + "]" * depth + "}"


def _poisoned(value: float) -> dict[str, torch.Tensor]:
    tensors = dict(TENSORS)
    name = sorted(tensors)[5]
    tensors[name] = tensors[name].clone().view(-1).index_fill(0, torch.tensor([0]), value).view_as(tensors[name])
    return tensors


def _expansion(value: str) -> str:
    return _replace('"expansion": 3,', f'"expansion": {value},')


HYBRID_CONFIG = to_dict(get_config("s2c-hybrid-tiny"))
# id -> (kdic metadata JSON, tensors, message the CheckpointError must contain)
CASES: dict[str, tuple[str, dict[str, torch.Tensor], str]] = {
    "huge-latent-channels": (
        _with(_set("config", "transform", "latent_channels", value=2**22)),
        TENSORS,
        f"latent_channels must be >= 1 and <= {MAX_CHANNELS}",
    ),
    "huge-depth": (
        _with(_set("config", "transform", "encoder", 1, "depth", value=2**24)),
        TENSORS,
        "stage depth must be >= 0 and <= ",
    ),
    "huge-channels-in-entropy": (
        _with(_set("config", "entropy", "hyper_channels", value=10**9)),
        TENSORS,
        "hyper_channels must be >= 1",
    ),
    "inf-expansion": (_expansion("Infinity"), TENSORS, "corrupt kdic metadata.*Infinity is not a JSON number"),
    "overflowing-expansion": (_expansion("1e999"), TENSORS, "corrupt kdic metadata.*out of range"),
    "nan-expansion": (_expansion("NaN"), TENSORS, "corrupt kdic metadata.*NaN is not a JSON number"),
    "overlong-integer": (_replace('"depth": 2', '"depth": ' + "9" * 5000), TENSORS, "corrupt kdic metadata"),
    "nested-100000-deep": (_nested(HOSTILE_DEPTH), TENSORS, "corrupt kdic metadata.*recursion"),
    "nested-deeper-than-allowed": (
        _with(_set("extra", "x", value=json.loads("[" * 500 + "]" * 500))),
        TENSORS,
        "nested deeper than",
    ),
    "not-json": ("{config: ", TENSORS, "corrupt kdic metadata"),
    "metadata-a-list": ("[1, 2]", TENSORS, "must be a JSON object, got list"),
    "metadata-a-string": ('"kdic-weights"', TENSORS, "must be a JSON object, got str"),
    "wrong-format": (_with(_set("format", value="pickle")), TENSORS, "unsupported weights format 'pickle'"),
    "future-version": (_with(_set("format_version", value=2)), TENSORS, "unsupported weights format .* version 2"),
    "version-not-a-string": (_with(_set("kdic_version", value=[1])), TENSORS, "kdic_version must be a version string"),
    "negative-lambda": (_with(_set("lmbda", value=-1)), TENSORS, "lmbda must be a positive number"),
    "extra-a-list": (_with(_set("extra", value=[])), TENSORS, "extra must be a JSON object"),
    "missing-config": (_with(_delete("config")), TENSORS, "has no model config"),
    "config-a-list": (_with(_set("config", value=[1, 2])), TENSORS, "config: expected a mapping, got list"),
    "config-without-name": (_with(lambda m: m["config"].pop("name")), TENSORS, "missing 1 required .*name"),
    "name-with-slash": (_with(_set("config", "name", value="../../etc/passwd")), TENSORS, "model name .* must match"),
    "name-uppercase": (_with(_set("config", "name", value="KDIC")), TENSORS, "model name 'KDIC' must match"),
    "unhashable-entropy-kind": (_with(_set("config", "entropy", "kind", value=[])), TENSORS, "kind: expected one of"),
    "zero-heads": (
        _with(_set("config", "transform", "encoder", 1, "heads", value=0)),
        TENSORS,
        "attention heads must be >= 1",
    ),
    "other-models-config": (
        _with(_set("config", value=HYBRID_CONFIG)),
        TENSORS,
        "weights do not match the model config:.*file has",
    ),
    "missing-tensor": (
        VALID,
        {k: v for k, v in TENSORS.items() if not k.startswith("g_s")},
        "weights do not match the model config: missing g_s",
    ),
    "unexpected-tensor": (VALID, {**TENSORS, "evil\nname": torch.zeros(3)}, "unexpected 'evil\\\\nname'"),
    "integer-tensor": (
        VALID,
        {k: v.to(torch.int32) for k, v in TENSORS.items()},
        "file stores I32, model expects one of F16, BF16, F32",
    ),
    "zero-width-layer": (
        _with(_set("config", "transform", "encoder", 0, "expansion", value=0.01)),
        TENSORS,
        "weights do not match the model config",
    ),
    "nan-weights": (VALID, _poisoned(float("nan")), "holds NaN or infinite values"),
    "inf-weights": (VALID, _poisoned(float("inf")), "holds NaN or infinite values"),
}
RAW_FILES: dict[str, tuple[bytes, str]] = {
    "random-bytes": (random.Random(16).randbytes(4096), "is not a safetensors weights file"),
    "five-bytes": (b"\x10\x00\x00\x00\x00", "is not a safetensors weights file"),
    "header-claims-1-tib": ((2**40).to_bytes(8, "little") + b"{}", "header of 1099511627776 bytes"),
    "header-not-json": ((16).to_bytes(8, "little") + b"not json at all!", "is not a safetensors weights file"),
}


@pytest.fixture(scope="module")
def malformed(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Every malformed case written to disk: id -> (path, expected message)."""
    folder = tmp_path_factory.mktemp("malformed")
    files = {}
    for case, (metadata, tensors, message) in CASES.items():
        save_file(tensors, str(folder / f"{case}.safetensors"), metadata={"kdic": metadata})
        files[case] = (folder / f"{case}.safetensors", message)
    for case, (content, message) in RAW_FILES.items():
        (folder / f"{case}.safetensors").write_bytes(content)
        files[case] = (folder / f"{case}.safetensors", message)
    good = folder / "good.safetensors"
    save_file(TENSORS, str(good), metadata={"kdic": VALID})
    data = good.read_bytes()
    for case, size in (("truncated-data", len(data) - 1000), ("truncated-header", 4000)):
        (folder / f"{case}.safetensors").write_bytes(data[:size])
        files[case] = (folder / f"{case}.safetensors", "is not a safetensors weights file")
    kdic.load(good)  # warm up imports and the meta device so the timings below are the checks alone
    return files


ALL_CASES = [*CASES, *RAW_FILES, "truncated-data", "truncated-header"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


@pytest.mark.parametrize("case", ALL_CASES)
def test_malformed_file_is_one_checkpoint_error_fast_and_small(malformed, case):
    path, message = malformed[case]
    rss, start = _peak_rss_mb(), time.process_time()  # CPU time: other jobs on the machine do not count
    with pytest.raises(CheckpointError, match=message) as caught:
        kdic.load(path)
    elapsed, growth = time.process_time() - start, _peak_rss_mb() - rss
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 1000
    assert elapsed < MAX_CPU_SECONDS, f"{case}: {elapsed:.2f} CPU s"
    assert growth < MAX_RSS_GROWTH_MB, f"{case}: peak memory grew by {growth:.0f} MB"


METADATA_CASES = [
    c
    for c in ALL_CASES
    if "weights" not in c and "tensor" not in c and c not in ("other-models-config", "zero-width-layer")
]


@pytest.mark.parametrize("case", METADATA_CASES)
def test_read_metadata_and_read_config_refuse_what_load_refuses(malformed, case):
    path, message = malformed[case]
    for read in (kdic.read_metadata, read_config):
        with pytest.raises(CheckpointError, match=message):
            read(path)


@pytest.mark.parametrize("flags", [[], ["--json"]], ids=["text", "json"])
@pytest.mark.parametrize("case", METADATA_CASES)
def test_info_prints_one_error_line(malformed, case, flags, capsys):
    path, _ = malformed[case]
    assert main(["info", *flags, str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("kdic: error: ") and err.count("\n") == 1


def test_info_json_prints_validated_metadata_only(tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    save_file(TENSORS, str(path), metadata={"kdic": _with(_set("injected", value="x" * 1000))})
    assert main(["info", "--json", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == kdic.read_metadata(path) and "injected" not in printed
    assert config_from_dict(printed["config"]) == get_config("kdic-tiny")
    assert main(["info", str(path)]) == 0
    assert "model:         kdic-tiny (CPU-sized KDIC student" in capsys.readouterr().out


def test_read_config_returns_the_validated_config(tmp_path):
    path = kdic.save(build_model("s2c-hybrid-tiny"), tmp_path / "w.safetensors", lmbda=0.013)
    assert read_config(path) == get_config("s2c-hybrid-tiny")


@pytest.mark.parametrize("name", available())
def test_every_preset_passes_the_bounds_and_the_name_check(name):
    config = get_config(name)
    assert NAME_PATTERN.fullmatch(config.name)
    assert config_from_dict(json.loads(json.dumps(to_dict(config)))) == config


SHIPPED = sorted(WEIGHTS_DIR.glob("*.safetensors"))
FIXED_RATE = sorted(FIXED_RATE_WEIGHTS.glob("*-q?.safetensors"))


@pytest.mark.skipif(not SHIPPED, reason=f"no shipped weights in {WEIGHTS_DIR}")
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_weights_file_loads_as_its_variable_rate_preset(path):
    model = kdic.load(path)
    preset = replace(
        with_variable_rate(get_config(path.stem.removesuffix("-vr")), method="modulated"), padding="replicate"
    )
    assert model.config == read_config(path) == preset and model.lmbda is None


@pytest.mark.parametrize("path", FIXED_RATE, ids=lambda p: p.name)
def test_every_fixed_rate_weights_file_of_kdic_0_1_still_loads(path):
    model = kdic.load(path)
    assert model.config == read_config(path) == get_config(path.name.rsplit("-q", 1)[0])
    assert model.lmbda == kdic.read_metadata(path)["lmbda"] > 0


@pytest.mark.parametrize(
    "name", ["../../x", "../strategies/smodi", "smodi/", "Smodi", "smodi.txt", "", "-x", "two_stage", "/etc/passwd"]
)
def test_strategy_names_cannot_leave_the_strategies_folder(name):
    with pytest.raises(ConfigError, match=r"unknown strategy .*; known: .*smodi"):
        load_strategy(name)


def test_bundled_strategies_by_name_and_files_by_json_path(tmp_path):
    for name in bundled_names("strategies"):
        assert load_strategy(name).phases
    copy = tmp_path / "mine.json"
    copy.write_text((CONFIG_DIR / "strategies" / "smodi.json").read_text())
    assert load_strategy(str(copy)) == load_strategy("smodi")
