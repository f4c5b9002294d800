"""The DVC pipeline end to end at smoke scale: every stage of dvc.yaml runs (prepare -> ... -> tables) in a copy of
the repository with `profile: smoke`, and every declared output appears.

The pipeline notebooks live in nbs/pipeline/ (marked `.notest`, so `nbdev_test` skips them: they depend on each
other's outputs and are run here, in order, by DVC itself).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Copy the tracked tree, switch to the smoke profile, and run `dvc repro` (the README's first command's last step)."""
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    for f in _tracked_files():
        if f.startswith(("reports/", "dvc.lock", "data/sets.json", "data/embeddings.json")): continue   # start from nothing: every output is made here
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, work / f)
    params = (work / "params.yaml").read_text()
    assert "\nprofile: mini\n" in params, "params.yaml must select the mini profile by default"
    (work / "params.yaml").write_text(params.replace("\nprofile: mini\n", "\nprofile: smoke\n"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
           "TQDM_DISABLE": "1"}
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    r = subprocess.run([str(BIN / "dvc"), "repro", "--no-commit"], cwd=work, env=env, capture_output=True, text=True)
    print(r.stdout[-6000:], r.stderr[-6000:])
    assert r.returncode == 0, f"dvc repro failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return work


def test_every_stage_output_exists(smoke_run):
    out = subprocess.run([str(BIN / "dvc"), "status"], cwd=smoke_run, capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    for n in range(1, 6):
        assert (smoke_run / f"reports/table{n}.md").stat().st_size > 0
        assert (smoke_run / f"reports/table{n}.csv").stat().st_size > 0
    P = yaml.safe_load((smoke_run / "params.yaml").read_text())
    for name in P["models"]:
        assert (smoke_run / "reports/metrics/train" / f"{name}.json").exists(), name
        assert (smoke_run / "reports/figures" / f"samples-{name}.png").exists(), name
    for name in P["models"]:   # every model's samples measured against the real-vs-real floor (or skipped, with the reason)
        q = json.loads((smoke_run / "reports/metrics/quality" / f"{name}.json").read_text())
        assert q["model"] == name and q["profile"] == "smoke", q
        if not q.get("skipped"):
            for k in ("speckle_fraction", "spectrum", "colour_histogram_w1"): assert q[k]["extractor"], (name, k)
            assert q["control_accuracy"] and q["cross_resolution"], name
    sh = json.loads((smoke_run / "reports/metrics/quality/shapes-infinity-brush.json").read_text())
    assert set(sh["control_accuracy"]) == {"learned", "fixed"}, sh["control_accuracy"]   # real-trained and data.shape_class
    assert {"half", "double", "quadruple"} <= set(sh["cross_resolution"]), sh["cross_resolution"]   # R = 32: up to 4R
    assert len(list((smoke_run / "samples/shapes-infinity-brush/cross").glob("*/*.png"))) == 8   # 2 classes x 4 sizes x 1 seed
    assert "vs_smoothed_real" in sh["spectrum"], sh["spectrum"]
    quality = (smoke_run / "reports/quality.md").read_text()
    assert all(name in quality for name in P["models"]) and "smoke" in quality, quality[:500]
    assert (smoke_run / "reports/quality.csv").stat().st_size > 0
    for name in P["evals"]:
        rec = json.loads((smoke_run / "reports/metrics/eval" / f"{name}.json").read_text())
        assert rec["profile"] == "smoke"
        for r in rec["results"]: assert r["extractor"], r   # every number names its feature extractor
    emb = json.loads((smoke_run / "data/embeddings.json").read_text())
    for role, r in emb["roles"].items():   # each offline extractor says whether it left chance (5 smoke steps: it need not)
        assert isinstance(r["ssl_learned"], bool) and r["ssl_chance_loss"] > 0 and -1 <= r["mean_pairwise_cosine"] <= 1, (role, r)
    brca = json.loads((smoke_run / "reports/metrics/eval/brca-infinity-brush.json").read_text())["results"]
    if not emb["roles"]["brca"]["ssl_learned"]:   # a number from an encoder that learned nothing carries a warning
        assert all("did not leave chance" in r["note"] for r in brca if r["extractor"].startswith("tiny-ssl")), brca


def test_tables_name_extractor_and_scale(smoke_run):
    t2 = (smoke_run / "reports/table2.md").read_text()
    assert "smoke" in t2 and "tiny-ssl" in t2, t2[:500]
    assert "Paper" in t2 and "Ours" in t2


def test_tables_record_seeds(smoke_run):
    cost = json.loads((smoke_run / "reports/metrics/cost.json").read_text())["meta"]
    assert cost["seed"] == 0 and "commit" in cost, cost   # the copy is an empty git repository: commit is None there
    assert "Seeds: measurement 0;" in (smoke_run / "reports/table4.md").read_text()
    assert "Seeds: sampling 0–" in (smoke_run / "reports/table2.md").read_text()   # the seeds the samples were drawn with
