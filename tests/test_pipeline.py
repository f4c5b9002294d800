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
    assert "claimed orderings" in (smoke_run / "reports/claims.md").read_text()   # the README's summary of the claims
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
    assert set(sh["control_accuracy"]) == {"learned"}, sh["control_accuracy"]   # a classifier trained on real images
    st = sh["structure"]   # the shapes role is a structure set (mini-forms): its fixed reader beside the real and A u0 floors
    for k in ("accuracy", "mean_fit"): assert {"gen", "real_floor", "smoothed_floor"} <= set(st[k]), st
    assert st["real_floor"] if "real_floor" in st else st["accuracy"]["real_floor"] >= 0.9, st
    assert {"half", "double", "quadruple"} <= set(sh["cross_resolution"]), sh["cross_resolution"]   # R = 32: up to 4R
    assert len(list((smoke_run / "samples/shapes-infinity-brush/cross").glob("*/*.png"))) == 8   # 2 classes x 4 sizes x 1 seed
    assert "vs_smoothed_real" in sh["spectrum"], sh["spectrum"]
    quality = (smoke_run / "reports/quality.md").read_text()
    assert all(name in quality for name in P["models"]) and "smoke" in quality, quality[:500]
    assert (smoke_run / "reports/quality.csv").stat().st_size > 0
    for name in [*P["models"], "downstream"]:   # a model with no table cells writes a record that says so
        rec = json.loads((smoke_run / "reports/metrics/eval" / f"{name}.json").read_text())
        assert rec["profile"] == "smoke"
        assert bool(rec.get("skipped")) == (name != "downstream" and not P["models"][name]["cells"]), rec
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


def test_command_line_samples_a_pipeline_checkpoint_as_the_pipeline_does(smoke_run, tmp_path):
    """One checkpoint format (09b_load): `infinity-brush sample` on a checkpoint `dvc repro` wrote draws, for the same
    label, size, seed, steps, eta and guidance, the image the `sample` stage wrote."""
    import numpy as np
    from PIL import Image
    model = "shapes-infinity-brush"
    conds = json.loads((smoke_run / "samples" / model / "conditions.json").read_text())
    c = conds["00000"]
    out = tmp_path / "cli.png"
    r = subprocess.run([str(BIN / "infinity-brush"), "sample", str(smoke_run / "models" / model / "last.safetensors"),
                        "--label", str(c["label"]), "--size", str(conds["size"]), "--seed", str(c["seed"]),
                        "--steps", str(conds["steps"]), "--eta", str(conds["eta"]), "--guidance", str(conds["guidance"]),
                        "--out", str(out)], capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    a = np.asarray(Image.open(out), dtype=np.int16)
    b = np.asarray(Image.open(smoke_run / "samples" / model / "00000.png"), dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() == 0, (a.shape, b.shape, np.abs(a - b).max())


def test_a_killed_train_stage_resumes_to_the_weights_of_an_uninterrupted_run(smoke_run, tmp_path):
    """The train stage checkpoints every `ckpt_every` steps and resumes from it (params.yaml persists the checkpoint):
    the stage killed mid-run (SIGKILL, as a closed laptop lid or a cluster's pre-emption) and run again ends with the
    weights, EMA included, of a run that was never interrupted."""
    model, steps, every = "shapes-infinity-brush", 80, 10
    params = smoke_run / "params.yaml"; original = params.read_text()
    P = yaml.safe_load(original)
    P["profiles"]["smoke"]["train"]["per_model"] = {model: {"steps": steps, "ckpt_every": every}}
    params.write_text(yaml.safe_dump(P, sort_keys=False))
    try: _kill_and_resume(smoke_run, tmp_path, model, steps)
    finally: params.write_text(original)


def _kill_and_resume(smoke_run, tmp_path, model, steps):
    import signal, time
    from safetensors.torch import load_file
    from infinity_brush.train import checkpoint_info
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    def stage(models_dir: str):
        return [str(BIN / "papermill"), "--no-progress-bar", "-k", "python3", "--cwd", ".", "nbs/pipeline/train.ipynb",
                str(tmp_path / f"{models_dir}.ipynb"), "-p", "profile", "smoke", "-p", "params_file", "params.yaml",
                "-p", "data_dir", "data", "-p", "model", model, "-p", "method", "infinity-brush", "-p", "role", "shapes",
                "-p", "models_dir", models_dir, "-p", "metrics_dir", f"{models_dir}-metrics", "-p", "plots_dir", f"{models_dir}-plots"]
    subprocess.run(stage("whole"), cwd=smoke_run, env=env, check=True, capture_output=True)
    ckpt = smoke_run / "killed" / model / "last.safetensors"
    p = subprocess.Popen(stage("killed"), cwd=smoke_run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    t0, killed_at = time.time(), None
    while time.time() - t0 < 600 and p.poll() is None:
        try: step = checkpoint_info(ckpt)["step"] if ckpt.exists() else 0
        except Exception: step = 0           # caught between the write and the rename: look again
        if 0 < step < steps: killed_at = step; os.killpg(p.pid, signal.SIGKILL); break
        time.sleep(0.02)
    p.wait()
    assert killed_at is not None, "the stage ended before a checkpoint could be caught mid-run"
    r = subprocess.run(stage("killed"), cwd=smoke_run, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = (tmp_path / "killed.ipynb").read_text()
    assert "resumed at step" in out, out[-2000:]
    a, b = load_file(smoke_run / "whole" / model / "last.safetensors"), load_file(ckpt)
    assert checkpoint_info(ckpt)["step"] == steps and a.keys() == b.keys()
    for k in a: assert torch_equal(a[k], b[k]), (k, killed_at)


def torch_equal(x, y) -> bool:
    import torch
    return bool(torch.equal(x, y))
