"""Every benchmark the notebooks and the README name is registered and runs with `--quick`; every `bench_*` function
of the package is registered (a lost `@register_bench` decorator made `cano` disappear once)."""
import inspect
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infinity_brush.bench import load_benchmarks, run_bench

ROOT = Path(__file__).resolve().parents[1]


def named_benchmarks() -> set:
    "Names in `python -m infinity_brush.bench NAME` anywhere in the notebooks or the README, and `cano` (issue 12)."
    text = "\n".join(p.read_text(encoding="utf-8") for p in [*sorted((ROOT / "nbs").rglob("*.ipynb")), ROOT / "README.md"])
    return {m for m in re.findall(r"infinity_brush\.bench\s+([a-z][a-z0-9_]*)", text) if m not in {"name", "import"}} | {"cano"}


NAMED = sorted(named_benchmarks())


def test_named_benchmarks_are_registered():
    assert {"cano", "sample", "table4", "train_memory"} <= set(NAMED), NAMED
    missing = set(NAMED) - set(load_benchmarks())
    assert not missing, f"named but not registered: {sorted(missing)}"


def test_every_bench_function_is_registered():
    registered = set(load_benchmarks().values())
    import importlib, pkgutil, infinity_brush
    unregistered = []
    for m in pkgutil.iter_modules(infinity_brush.__path__):
        if m.name.startswith("_") or m.name == "bench": continue
        mod = importlib.import_module(f"infinity_brush.{m.name}")
        unregistered += [f"{m.name}.{n}" for n, f in inspect.getmembers(mod, inspect.isfunction)
                         if n.startswith("bench_") and f.__module__ == mod.__name__ and f not in registered]
    assert not unregistered, f"benchmark functions without @register_bench: {unregistered}"


@pytest.mark.parametrize("name", [n for n in NAMED if n not in ("cano", "gpu")])   # cano, gpu: through the command line, below
def test_named_benchmark_runs_quick(name):
    rows = run_bench(name, quick=True, device="cpu", out=io.StringIO())
    assert rows and all(r["bench"] == name and r["quick"] for r in rows), rows


def test_cano_from_the_command_line():
    """`python -m infinity_brush.bench cano --quick` prints linear_ratio and speedup_vs_softmax."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "infinity_brush.bench", "cano", "--quick", "--device", "cpu"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    last = rows[-1]
    assert {"linear_ratio", "speedup_vs_softmax"} <= set(last), last
    assert last["linear_ratio"] > 0 and last["speedup_vs_softmax"] > 0


def test_gpu_check_from_the_command_line(tmp_path):
    """The GPU check's `--quick` CPU mode, exactly as it is run on a GPU machine: every stage a JSON line in
    OUT/gpu.jsonl, the figures beside it; a benchmark that writes no files refuses `--out` with one line, exit 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "infinity_brush.bench"]
    r = subprocess.run(cmd + ["gpu", "--quick", "--device", "cpu", "--out", str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(l) for l in (tmp_path / "gpu.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows if r["stage"] != "sample"] == ["setup", "train", "quality", "figures", "compile", "done"]
    assert all(r["device"] == "cpu" and r["git_commit"] and "cuda" in r for r in rows)
    assert {p.name for p in tmp_path.glob("*.png")} == {"gpu-samples.png", "gpu-sizes.png"}
    r = subprocess.run(cmd + ["noise", "--quick", "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "writes no files" in r.stderr, r.stderr
