"""The cpu-repro study (docs/reproduction.md): its plan file describes a fair study and the runs that
were made, bad plan files are refused, the runner starts argument lists that resume and never
repeats a run, and the report rebuilds the committed tables, plots and document from the
committed results."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from kdic.configs import config_path
from kdic.data import QUALITY_LAMBDAS
from kdic.distill.strategy import load_strategy
from kdic.errors import ConfigError
from kdic.study import load_study, run_study, runner
from kdic.study.plan import Study, study_from_dict
from kdic.study.runner import CHECKPOINT, remaining_steps, train_command

REPO = Path(__file__).resolve().parents[1]
STUDY = load_study("cpu-repro")
PLAN = json.loads(config_path("studies", "cpu-repro").read_text())


def _final_teachers(study: Study) -> dict[int, str]:
    return {r.quality: r.name for r in study.curve_runs("teacher")}


def _total_steps(study: Study, name: str) -> int:
    """Steps of a teacher counting those of every run it was fine-tuned from."""
    run = study.run(name)
    return run.steps + (_total_steps(study, run.after) if run.after else 0)


def test_plan_describes_a_fair_study():
    teachers = _final_teachers(STUDY)
    assert set(teachers) == set(QUALITY_LAMBDAS)  # one final teacher per quality of the library's table
    assert len({_total_steps(STUDY, name) for name in teachers.values()}) == 1  # all trained equally long
    students = [r for r in STUDY.runs if not r.is_teacher]
    # every student: the same budget and schedule, distilled from the final teacher of its own quality
    assert len({(r.steps, r.lr, r.decay_at) for r in students}) == 1
    assert all(r.after == teachers[r.quality] for r in students)
    # every strategy with seed 0 at the like-for-like qualities, each once; the headline pair at all four
    like = set(STUDY.report.like_for_like_qualities)
    seed0 = Counter((r.kind, r.quality) for r in students if r.seed == 0)
    assert max(seed0.values()) == 1
    for kind in {r.kind for r in students}:
        assert {q for k, q in seed0 if k == kind} >= like
    assert {q for k, q in seed0 if k in ("smodi", "vanilla")} == set(QUALITY_LAMBDAS)
    assert {r.quality for r in students if r.seed == 1 and r.kind == "vanilla"} == like  # the noise floor
    for run in students:  # kinds are bundled strategies; the teacher-using ones start from the pruned teacher
        strategy = load_strategy(run.kind)
        assert (run.teacher_init or strategy.teacher_init) == strategy.uses_teacher, run.name


def test_plan_keeps_what_the_study_shipped():
    """Every weights file kdic 0.1 shipped is kept by exactly one run: the final teacher or the seed-0
    SMoDi student of its quality."""
    shipped = Path(STUDY.paths.shipped_weights)
    keepers = {Path(r.keep).name: r for r in STUDY.runs if r.keep and Path(r.keep).parent == shipped}
    files = sorted((REPO / shipped).glob("*.safetensors"))
    assert len(files) == 8 and {p.name for p in files} == set(keepers)
    for path in files:
        run = keepers[path.name]
        preset, _, quality = path.stem.rpartition("-q")
        assert run.quality == int(quality)
        assert (run.curve, preset) in (("teacher", STUDY.teacher), ("smodi", STUDY.student))
        assert run.seed == 0


MOVED = {"src/kdic/data/weights": "results/repro/shipped-0.1"}  # kdic 0.1 shipped them; the logs say where they were


def _made_from(recorded: str, study: Study, source: str) -> bool:
    """Whether a recorded weights path is ``source``'s kept file (where it was when the run ran) or
    (a run made before weights were kept) a file in ``source``'s run folder."""
    path = Path(recorded)
    kept = Path(MOVED.get(path.parent.as_posix(), path.parent.as_posix())) / path.name
    return kept == Path(study.run(source).keep) or path.parent.name == source


def test_plan_is_what_the_committed_runs_ran():
    """The configs the committed logs recorded agree with the plan: lambda, budget, schedule, seed,
    shared flags, where each run started from and, for students, strategy and teacher start."""
    flags = dict(STUDY.train_flags)
    for run in STUDY.runs:
        config = json.loads((REPO / STUDY.log(run, ".json")).read_text())["config"]  # the study is complete
        train = config["train"]
        assert (train["lmbda"], train["steps"], train["lr"], train["decay_at"], train["seed"]) == (
            run.lmbda,
            run.steps,
            run.lr,
            [run.decay_at],
            run.seed,
        ), run.name
        assert all(train[k] == flags[k] for k in ("batch_size", "crop", "checkpoint_every", "val_every")), run.name
        if run.is_teacher and run.after is None:
            assert config.get("init") is None and config["model"]["name"] == STUDY.teacher
        elif run.is_teacher:
            assert _made_from(config["init"], STUDY, run.after), run.name
        else:
            assert config["strategy"]["name"] == run.kind and _made_from(config["teacher"], STUDY, run.after)
            started_from_teacher = config["teacher_init"] or config["strategy"].get("teacher_init", False)
            assert started_from_teacher == (run.teacher_init or load_strategy(run.kind).teacher_init), run.name


def _broken(change) -> dict:
    plan = copy.deepcopy(PLAN)
    change(plan)
    return plan


def _run_named(plan: dict, name: str) -> dict:
    return next(r for r in plan["runs"] if r["name"] == name)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.update(extra=1), r"unknown field\(s\) \['extra'\]"),
        (lambda p: _run_named(p, "teacher-q4").update(lmbda=0.01), r"unknown field\(s\) \['lmbda'\]"),
        (lambda p: _run_named(p, "teacher-q4").update(name="../teacher"), "is not a name"),
        (lambda p: _run_named(p, "teacher-q4").update(name="Teacher Q4"), "is not a name"),
        (lambda p: _run_named(p, "smodi-q3-s0").update(after="teacher-q9"), "'after' must name an earlier run"),
        (lambda p: _run_named(p, "teacher-q3").update(after="teacher-q4-ft"), "'after' must name an earlier run"),
        (lambda p: _run_named(p, "vanilla-q3-s0").update(after="smodi-q3-s0"), "a teacher run that keeps its weights"),
        (lambda p: _run_named(p, "smodi-q3-s0").pop("after"), "a student needs 'after'"),
        (lambda p: _run_named(p, "teacher-q4").update(quality=7), "quality must be one of"),
        (lambda p: _run_named(p, "teacher-q4").update(steps=True), "steps: expected int, got bool"),
        (lambda p: _run_named(p, "teacher-q4").update(keep="../elsewhere.safetensors"), "inside the checkout"),
        (lambda p: _run_named(p, "teacher-q4").update(curve="nobody"), "not one of report.curves"),
        (lambda p: p["runs"].append(p["runs"][0]), "listed twice"),
        (lambda p: p["train_flags"].update(resume=True), "not a flag a plan may set"),
        (lambda p: p["paths"].update(results="/tmp/results"), "inside the checkout"),
        (lambda p: p["report"].update(energy_runs=["teacher-q3", "vanilla-q2-s0"]), "needs runs at one quality"),
    ],
)
def test_bad_plan_files_are_refused(tmp_path, change, message):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_broken(change)))
    with pytest.raises(ConfigError, match=message):
        load_study(str(path))


def test_unknown_or_malformed_study_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown study"):
        load_study("../configs/studies/cpu-repro")
    (tmp_path / "plan.json").write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_study(str(tmp_path / "plan.json"))


def test_commands_are_argument_lists_that_resume_from_a_checkpoint(tmp_path):
    for run in STUDY.runs:
        command = train_command(STUDY, run, tmp_path)
        assert command[:3] == [sys.executable, "-m", "kdic.cli"]
        assert all(isinstance(a, str) and not set(a) & set(";&|$`<>()*?\n") for a in command)
        assert command[command.index("--lmbda") + 1] == str(QUALITY_LAMBDAS[run.quality])
        assert "--resume" not in command
    run = STUDY.run("smodi-q3-s0")
    assert [s[3] if isinstance(s, list) else "keep" for s in remaining_steps(STUDY, run, tmp_path)] == [
        "distill",
        "export",
        "keep",
        "eval",
    ]
    (tmp_path / STUDY.run_dir(run) / CHECKPOINT).parent.mkdir(parents=True)
    (tmp_path / STUDY.run_dir(run) / CHECKPOINT).touch()
    assert train_command(STUDY, run, tmp_path)[-1] == "--resume"
    (tmp_path / STUDY.run_dir(run) / "model.safetensors").touch()  # trained: only finalized
    assert [s[3] if isinstance(s, list) else "keep" for s in remaining_steps(STUDY, run, tmp_path)] == [
        "export",
        "keep",
        "eval",
    ]
    (tmp_path / STUDY.point(run)).parent.mkdir(parents=True)
    (tmp_path / STUDY.point(run)).touch()  # done: never repeated
    assert remaining_steps(STUDY, run, tmp_path) == []


FAKE_KDIC = """
import sys
from pathlib import Path

args = sys.argv[1:]
with open("calls.log", "a") as calls:
    calls.write(" ".join(args) + "\\n")
def option(name):
    return Path(args[args.index(name) + 1])
if args[0] in ("train", "distill"):
    run_dir = option("--run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("model.safetensors", "w"), ("config.json", "{}"), ("summary.json", "{}"),
                       ("log.csv", "global_step,kind,seconds\\n1,train,0.5\\n")):
        (run_dir / name).write_text(text)
else:  # export, eval
    option("-o").write_text("{}")
"""


def test_runner_starts_runs_after_their_source_and_never_twice(tmp_path, monkeypatch):
    """A two-run study with a stand-in for kdic: the student starts once its teacher is done, each
    run is trained, exported, kept and evaluated once, and a second call starts nothing."""
    for folder in ("data/train", "data/eval"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "fake_kdic.py").write_text(FAKE_KDIC)
    monkeypatch.setattr(runner, "KDIC", (sys.executable, str(tmp_path / "fake_kdic.py")))
    monkeypatch.setattr(runner, "POLL_SECONDS", 0.01)
    teacher = {
        "name": "t",
        "kind": "teacher",
        "quality": 3,
        "steps": 10,
        "lr": 1e-3,
        "decay_at": 0.5,
        "keep": "out/weights/t.safetensors",
        "curve": "teacher",
    }
    student = {
        "name": "s",
        "kind": "smodi",
        "quality": 3,
        "steps": 10,
        "lr": 1e-3,
        "decay_at": 0.5,
        "after": "t",
        "teacher_init": True,
        "curve": "smodi",
    }
    plan = {**copy.deepcopy(PLAN), "runs": [teacher, student]}
    plan["paths"].update(runs="runs", results="out", train_data="data/train", eval_data="data/eval")
    plan["cost"]["seconds_per_step"] = {"teacher": 1.0, "smodi": 1.0}
    plan["report"].update(
        curves=["teacher", "smodi"],
        full_range_pairs=[],
        complexity=[],
        energy_runs=["t"],
        strategy_table={"rows": ["smodi"], "anchors": [{"curve": "teacher"}]},
        training={"runs": ["s"], "phases": ["train"], "windows": [[0, 10]]},
    )
    study = study_from_dict(plan)
    assert run_study(study, tmp_path, minutes=60) == []
    calls = [line.split()[0] for line in (tmp_path / "calls.log").read_text().splitlines()]
    assert calls == ["train", "export", "eval", "distill", "export", "eval"]
    assert (tmp_path / "out/weights/t.safetensors").is_file() and (tmp_path / "out/logs/s.json").is_file()
    assert run_study(study, tmp_path, minutes=60) == []
    assert len((tmp_path / "calls.log").read_text().splitlines()) == 6


def test_a_run_stays_held_while_a_command_started_for_it_lives(tmp_path):
    """The lock travels into the run's commands: it outlives the invocation's own descriptor."""
    run = STUDY.run("teacher-q4")
    (tmp_path / STUDY.paths.runs).mkdir(parents=True)
    assert not runner.is_held(STUDY, run, tmp_path)
    lock = runner._try_lock(runner._lock_path(STUDY, run, tmp_path), create=True)
    assert lock is not None
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, pass_fds=(lock,)
    )
    os.close(lock)
    assert runner.is_held(STUDY, run, tmp_path)
    child.communicate(b"")
    assert not runner.is_held(STUDY, run, tmp_path)


ANCHOR = REPO / STUDY.paths.anchor.partition("#")[0]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The report rebuilt from the committed results into a fresh folder."""
    if not ANCHOR.is_file():
        pytest.skip(f"the report's BD-rate anchor (VTM on Kodak) lives in ../shared, not found at {ANCHOR}")
    from kdic.eval.report import write_report

    out = tmp_path_factory.mktemp("report")
    return out, write_report(STUDY, REPO, out)


def test_report_rebuilds_the_committed_tables_and_document(regenerated):
    out, written = regenerated
    curves = sorted(p.relative_to(out) for p in written if p.suffix == ".json")
    committed = sorted(p.relative_to(REPO) for p in (REPO / STUDY.curves_dir).glob("*.json"))
    assert curves == committed  # every committed curve is rebuilt, none is left over
    for path in [*curves, Path(STUDY.paths.doc)]:
        assert (out / path).read_bytes() == (REPO / path).read_bytes(), path


def test_report_redraws_the_committed_plots(regenerated):
    out, written = regenerated
    plots = [p.relative_to(out) for p in written if p.suffix in (".png", ".svg")]
    import matplotlib

    drawn_with = Image.open(REPO / plots[0].with_suffix(".png")).text.get("Software", "")
    if f"version{matplotlib.__version__}," not in drawn_with:
        pytest.skip(f"the committed plots were drawn by {drawn_with!r}; this is matplotlib {matplotlib.__version__}")
    assert len(plots) == 7
    for path in plots:
        assert (out / path).read_bytes() == (REPO / path).read_bytes(), path
