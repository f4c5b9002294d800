"""Progress you can see during `dvc repro` (issue 29): a pipeline stage run by papermill exactly as dvc.yaml runs it
writes what it will do and its progress lines to the terminal (papermill's stderr), and the run summary is read back
from the executed notebook."""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_a_smoke_stage_shows_progress_in_the_terminal(tmp_path):
    nb = next(v["nb"] for v in yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"] if "nb" in v)   # every stage's papermill
    cmd = nb.split() + ["nbs/pipeline/prepare.ipynb", str(tmp_path / "prepare.ipynb"), "-p", "profile", "smoke",
                        "-p", "params_file", "params.yaml", "-p", "data_dir", str(tmp_path / "data")]
    env = {**{k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "INFINITY_BRUSH_PROGRESS_S": "0"}   # a line at every step (default: one per 30 s); conftest's TQDM_DISABLE would hide them
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    terminal = r.stdout + r.stderr
    for line in ("[prepare] build 4 data roles of profile smoke: attr (mini-attr, 4 images of 32²)",
                 "[prepare] roles 1/4 (25 %)", "[prepare] roles 4/4 (100 %) done in"):
        assert line in terminal, terminal[-3000:]
    assert "Executing Cell" not in terminal                 # the stage's own lines, not every cell's output (--log-output)

    summary = subprocess.run([sys.executable, "-m", "infinity_brush.core", "times", "--notebooks", str(tmp_path), "--out", str(tmp_path)],
                             cwd=ROOT, env=env, capture_output=True, text=True)
    assert summary.returncode == 0 and "| prepare |" in summary.stdout, summary.stdout + summary.stderr
    times = json.loads((tmp_path / "stage_times.json").read_text())
    assert 0 < times["stages"]["prepare"]["seconds"] < 300 and (tmp_path / "stage_times.md").exists(), times
