"""The reproduction plan (scripts/reproduce.py) honours the study design of docs/reproduction.md."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce.py"


def _script():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_plan_is_a_fair_complete_study():
    repro = _script()
    runs = repro.build_plan()
    names = {r.name for r in runs}
    assert len(names) == len(runs)
    assert all(r.after is None or r.after in names for r in runs)
    teachers = {repro.teacher_name(q): q for q in (1, 2, 3, 4)}
    for name, quality in teachers.items():  # every final teacher: scratch steps + fine-tuning steps
        run = next(r for r in runs if r.name == name)
        source = next(r for r in runs if r.name == run.after)
        assert source.after is None and run.quality == quality
        assert run.steps + source.steps == repro.TEACHER_STEPS + repro.TEACHER_FINETUNE_STEPS
    students = [r for r in runs if r.kind != "teacher"]
    # every strategy at the same budget and seed 0 at >= 3 lambdas; vanilla and smodi at all 4
    assert {r.steps for r in students} == {repro.STUDENT_STEPS}
    per_strategy = Counter(r.kind for r in students if r.seed == 0)
    assert set(per_strategy) == set(repro.STRATEGIES) | set(repro.CONTROLS)
    assert per_strategy["vanilla"] == per_strategy["smodi"] == 4
    assert min(per_strategy.values()) >= 3
    ablation = {r.quality for r in students if r.kind == "e2e-feature"}
    assert all({r.quality for r in students if r.kind == s} >= ablation for s in repro.STRATEGIES)
    assert {r.quality for r in students if r.seed == 1 and r.kind == "vanilla"} == ablation
    kept = {r.name: r.keep for r in runs}
    for r in students:  # distilled from the teacher of the same lambda, same hyper-parameters
        assert r.after == repro.teacher_name(r.quality)
        assert str(repro.QUALITY_LAMBDAS[r.quality]) in r.args
        assert r.args[r.args.index("--teacher") + 1] == str(kept[r.after])
        assert r.args[r.args.index("--lr") + 1] == "1e-3"
        # every teacher-using strategy starts from the pruned teacher; vanilla (the baseline) from scratch
        assert ("--teacher-init" in r.args) == (r.kind in set(repro.STRATEGIES) - {"vanilla"})
    for r in runs:  # later sessions start from committed weights, never from a run folder
        assert r.keep is not None or r.kind != "teacher"
        assert not any(str(repro.RUNS) in a for a in r.args if a != str(r.run_dir))
    shipped = {r.keep.name for r in runs if r.keep is not None and r.keep.parent == repro.PACKAGE_WEIGHTS}
    assert shipped == {f"{p}-q{q}.safetensors" for p in (repro.TEACHER, repro.STUDENT) for q in (1, 2, 3, 4)}
