"""Broken input never ends in a traceback: every sub-command of `infinity-brush`, given a set of broken inputs, exits
with code 2 and one line on stderr that starts with `infinity-brush SUBCOMMAND: error:` and names the file or the
option, and writes nothing. Tiny models (dim 16, no training: the checkpoints are written directly) keep it fast."""
import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from infinity_brush import cli
from infinity_brush.cli import main
from infinity_brush.data import prepare_mini
from infinity_brush.denoiser import DenoiserConfig, InfinityBrushDenoiser
from infinity_brush.embed import TinySSLConfig, TinySSLEncoder, save_ssl_encoder
from infinity_brush.train import EMA, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(dim=16, depth=1, heads=2, grid=8, unet_base=8, unet_mults=(1, 2), tdim=16, T=20)


def _checkpoint(path, **cfg):
    torch.manual_seed(0)
    c = DenoiserConfig(**{**TINY, **cfg})
    m = InfinityBrushDenoiser(c)
    save_checkpoint(path, m, EMA(m, 0.9), None, 1, {"denoiser": asdict(c), "sigma": 1 / 16, "schedule": "cosine", "T": c.T})
    return path


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """Two tiny data sets (16² images; labels, and 8-d embeddings), three checkpoints, an encoder, and broken files."""
    d = tmp_path_factory.mktemp("broken")
    attr = prepare_mini("mini-attr", d, size=16, n_images=4)
    naip = prepare_mini("mini-naip", d, size=16, n_images=4)
    (naip / "embeddings").mkdir()
    for p in sorted((naip / "images").glob("*.npy")):
        np.save(naip / "embeddings" / p.name, np.random.default_rng(0).normal(size=8).astype(np.float32))
    ck = {"label": _checkpoint(d / "label.safetensors", cond_kind="label", num_classes=2),
          "emb": _checkpoint(d / "emb.safetensors", cond_kind="embedding", cond_dim=8),
          "uncond": _checkpoint(d / "uncond.safetensors", cond_kind=None, conditioning="none")}
    save_ssl_encoder(TinySSLEncoder(TinySSLConfig(input_size=16, width=8, dim=8)), d / "enc.safetensors")
    real = ck["label"].read_bytes()
    bad = d / "bad"; bad.mkdir()
    (bad / "pickle.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    torch.save({"w": torch.ones(2)}, bad / "torch.pt")
    (bad / "cut.safetensors").write_bytes(real[:-1000])
    (bad / "head100.safetensors").write_bytes(real[:100])
    (bad / "text.npy").write_text("0.1 0.2 0.3\n")
    (bad / "text.npy.json").write_text((d / "enc.safetensors.json").read_text())
    (bad / "pickle.safetensors.json").write_text((d / "enc.safetensors.json").read_text())
    np.save(bad / "e3.npy", np.ones(3, np.float32))
    np.save(bad / "einf.npy", np.array([np.inf] * 8, np.float32))
    (bad / "a_file").write_text("not a folder")
    (bad / "empty").mkdir()
    (bad / "pngs").mkdir(); (bad / "pngs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    from safetensors.torch import save_file
    save_file({"x": torch.ones(1)}, str(bad / "plain.safetensors"))
    # data sets with one defect each (copies of the good ones)
    import shutil
    def variant(src, name, fix):
        v = d / name; shutil.copytree(src, v); fix(v); return v
    stems = sorted(json.loads((attr / "labels.json").read_text()))
    def relabel(value):
        def fix(v):
            lab = json.loads((v / "labels.json").read_text()); lab[stems[0]] = value; (v / "labels.json").write_text(json.dumps(lab))
        return fix
    sets = {"label2": variant(attr, "label2", relabel(2)), "label7": variant(attr, "label7", relabel(7)),
            "labeljson": variant(attr, "labeljson", lambda v: (v / "labels.json").write_text("{not json")),
            "dupkey": variant(attr, "dupkey", lambda v: (v / "labels.json").write_text(
                "{" + ", ".join(f'"{k}": 0' for k in [*stems, stems[1]]) + "}")),     # json.load would keep the last
            "embtext": variant(naip, "embtext", lambda v: next((v / "embeddings").glob("*.npy")).write_text("hello")),
            "embsize": variant(naip, "embsize", lambda v: np.save(next((v / "embeddings").glob("*.npy")), np.ones(5, np.float32))),
            "noemb": variant(naip, "noemb", lambda v: shutil.rmtree(v / "embeddings")),
            "imgtext": variant(naip, "imgtext", lambda v: next((v / "images").glob("*.npy")).write_text("hello")),
            "resume": variant(naip, "resume", lambda v: (v / "run").mkdir() or shutil.copy(bad / "pickle.safetensors", v / "run" / "last.safetensors"))}
    return {"d": d, "attr": attr, "naip": naip, "ck": ck, "bad": bad, "sets": sets, "enc": d / "enc.safetensors", "stems": stems}


def _tree(d: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in d.rglob("*")}


def _fails_cleanly(w, argv, *contains):
    """Run `infinity-brush ARGV` in this process; it must exit with 2 and one error line, having written nothing."""
    before = _tree(w["d"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])          # an exception escaping main is a traceback for the user
    e = err.getvalue()
    assert rc == 2, (argv, rc, out.getvalue(), e)
    lines = e.rstrip("\n").split("\n")                 # progress bars (\r-updated) may come first, each ended by \n
    assert "Traceback" not in e and sum("error:" in l for l in lines) == 1, (argv, e)
    e = lines[-1]
    assert e.startswith(f"infinity-brush {argv[0]}: error: "), (argv, e)
    for c in contains: assert str(c) in e, (argv, c, e)
    assert _tree(w["d"]) == before, (argv, "wrote", set(_tree(w["d"])) ^ set(before))
    return e


def cases(w):
    b, s, ck, naip = w["bad"], w["sets"], w["ck"], w["naip"]
    train = ["--pixels", 64, "--batch", 2, "--steps", 1, "--dim", 16, "--depth", 1, "--T", 20, "--out", w["d"] / "run"]
    sample = ["--size", 16, "--steps", 1, "--out", w["d"] / "out" / "s.png"]
    emb = sorted((naip / "embeddings").glob("*.npy"))[0]
    return [
        # prepare
        (["prepare", "mini-naip", "--out", b / "a_file", "--size", 16, "--n-images", 2], ["a_file", "Not a directory"]),
        (["prepare", "mini-naip", "--out", w["d"] / "p", "--size", 4], ["size >= 8"]),
        # embed
        (["embed", b / "empty"], ["no images"]),
        (["embed", b / "missing"], ["missing"]),
        (["embed", s["imgtext"]], ["not a NumPy array file"]),
        (["embed", naip, "--weights", b / "nothing.safetensors"], ["nothing.safetensors"]),
        (["embed", naip, "--weights", b / "pickle.safetensors"], ["pickle.safetensors: not a tiny-ssl encoder"]),
        (["embed", naip, "--encoder", "bogus"], ["unknown encoder kind 'bogus'"]),
        # train
        (["train", b / "missing", *train], ["missing"]),
        (["train", s["label2"], "--cond", "label", "--num-classes", 2, *train], ["label 2 outside [0, 2)", ".npy"]),
        (["train", s["label7"], "--cond", "label", "--num-classes", 2, *train], ["label 7 outside [0, 2)", ".npy"]),
        (["train", s["labeljson"], "--cond", "label", *train], ["labels"]),
        (["train", s["dupkey"], "--cond", "label", *train], [f"{s['dupkey'] / 'labels.json'}: duplicate key '{w['stems'][1]}'"]),
        (["train", s["embtext"], *train], ["not a NumPy array file"]),
        (["train", s["embsize"], *train], ["embedding of size 5"]),
        (["train", s["noemb"], *train], ["embedding missing"]),
        (["train", s["imgtext"], *train], ["not a NumPy array file"]),
        (["train", naip, *train[:-2], "--pixels", 1000, "--out", w["d"] / "run"], ["fewer than the pixel budget 1000"]),
        (["train", s["resume"], "--resume", *train[:-2], "--out", s["resume"] / "run"], ["corrupt checkpoint", "pickle"]),
        # sample: files that are not checkpoints (one loader, one error, as `train --resume`)
        (["sample", b / "nothing.safetensors", *sample], ["checkpoint not found"]),
        (["sample", b / "pickle.safetensors", *sample], ["corrupt checkpoint", "pickle.safetensors", "never unpickled"]),
        (["sample", b / "torch.pt", *sample], ["corrupt checkpoint", "torch.pt"]),
        (["sample", b / "cut.safetensors", *sample], ["corrupt checkpoint", "cut.safetensors"]),
        (["sample", b / "head100.safetensors", *sample], ["corrupt checkpoint", "head100.safetensors"]),
        (["sample", b / "plain.safetensors", *sample], ["not an infinity-brush checkpoint"]),
        # sample: a condition the checkpoint was not trained on
        (["sample", ck["label"], "--label", 2, *sample], ["--label 2 is outside [0, 2)"]),
        (["sample", ck["label"], "--label", -1, *sample], ["--label -1 is outside [0, 2)"]),
        (["sample", ck["label"], "--embedding", emb, *sample], ["conditioned on labels (2 classes); pass --label"]),
        (["sample", ck["emb"], "--label", 0, *sample], ["conditioned on 8-dimensional embeddings; pass --embedding"]),
        (["sample", ck["uncond"], "--label", 0, *sample], ["this checkpoint is unconditional; pass no --label"]),
        (["sample", ck["emb"], "--embedding", b / "text.npy", *sample], ["text.npy: not a NumPy array"]),
        (["sample", ck["emb"], "--embedding", b / "e3.npy", *sample], ["e3.npy has shape (3,)", "expects (8,)"]),
        (["sample", ck["emb"], "--embedding", b / "einf.npy", *sample], ["einf.npy: embedding contains NaN or inf"]),
        (["sample", ck["emb"], "--embedding", b / "none.npy", *sample], ["--embedding", "none.npy"]),
        (["sample", ck["emb"], "--reference", b / "none.png", "--encoder-weights", w["enc"], *sample], ["none.png"]),
        (["sample", ck["emb"], "--reference", b / "pngs" / "a.png", *sample], ["--encoder-weights"]),
        (["sample", ck["emb"], "--size", 16, "--out", w["d"] / "new" / "x.txt"], ["--out", "x.txt", "'.txt'"]),
        (["sample", ck["emb"], "--size", 16, "--out", w["d"] / "new"], ["--out", "(no suffix)"]),
        # evaluate
        (["evaluate", b / "missing", b / "pngs"], ["missing"]),
        (["evaluate", b / "pngs", b / "empty"], ["no images", "empty"]),
        (["evaluate", b / "pngs", b / "pngs", "--extractor", "tiny-ssl", "--weights", w["enc"]], ["a.png"]),
        (["evaluate", b / "pngs", b / "pngs", "--extractor", "tiny-ssl", "--weights", b / "pickle.safetensors"], ["not a tiny-ssl encoder"]),
        (["evaluate", b / "pngs", b / "pngs", "--extractor", "tiny-ssl"], ["tiny-ssl needs `weights`"]),
        (["evaluate", b / "pngs", b / "pngs", "--extractor", "bogus"], ["unknown encoder kind"]),
    ]


def test_every_subcommand_fails_cleanly_on_broken_input(w):
    cs = cases(w)
    assert {c[0][0] for c in cs} == {"prepare", "embed", "train", "sample", "evaluate"}
    for argv, contains in cs: _fails_cleanly(w, argv, *contains)


def test_good_inputs_of_the_walk_work(w):
    """The inputs next to the broken ones are fine: each broken case fails because of its one defect."""
    out = w["d"] / "good"
    for argv in (["sample", w["ck"]["label"], "--label", 1, "--size", 16, "--steps", 1, "--out", out / "l.png"],
                 ["sample", w["ck"]["emb"], "--embedding", sorted((w["naip"] / "embeddings").glob("*.npy"))[0],
                  "--size", 16, "--steps", 1, "--out", out / "e.tif"]):
        with contextlib.redirect_stdout(io.StringIO()): assert main([str(a) for a in argv]) == 0, argv
    assert (out / "l.png").stat().st_mode & 0o777 == (out / "e.tif").stat().st_mode & 0o777


def test_the_error_starts_its_own_line_after_a_progress_bar(monkeypatch):
    """A step that fails with a progress bar open: the bar is ended first, so the error is a line of its own."""
    from tqdm.auto import tqdm
    def fails(a):
        bar = tqdm(total=10, desc="training", disable=False); bar.update(3)
        raise ValueError("bad label in x.npy")
    monkeypatch.setattr(cli, "cmd_evaluate", fails)
    err = io.StringIO()
    with contextlib.redirect_stderr(err): rc = main(["evaluate", "a", "b"])
    assert rc == 2
    assert err.getvalue().split("\n")[-2] == "infinity-brush evaluate: error: bad label in x.npy", repr(err.getvalue())


def test_console_script_exit_code_and_one_line(w):
    """Through a real process, as a user runs it (progress bars on): exit code 2, one line, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}; env.pop("TQDM_DISABLE", None)
    for argv in (["sample", w["bad"] / "pickle.safetensors"], ["train", w["sets"]["label7"], "--cond", "label", "--out", w["d"] / "r"]):
        r = subprocess.run([sys.executable, "-c", "import sys; from infinity_brush.cli import main; sys.exit(main())", *map(str, argv)],
                           capture_output=True, text=True, env=env, cwd=w["d"])
        assert r.returncode == 2 and r.stdout == "", (argv, r.returncode, r.stdout, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip() and "Warning" not in l]
        assert "Traceback" not in r.stderr and len(lines) == 1 and lines[0].startswith(f"infinity-brush {argv[0]}: error: "), r.stderr
    assert not (w["d"] / "r").exists()


def _png16(path, a):
    """A 16-bit PNG, chunk by chunk (Pillow writes 16-bit grey only): a (H, W, C) uint16, C = 1..4."""
    import struct, zlib
    H, W, C = a.shape
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, {1: 0, 2: 4, 3: 2, 4: 6}[C], 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_rgba_and_16bit_data_sets_are_accepted(tmp_path, w):
    """Data sets users make without thinking of their pixel format: RGBA PNGs (slides exported with alpha, composited on
    white) and 16-bit PNGs / TIFFs (scaled by round(255 v / 65535)) train, embed and evaluate like 8-bit RGB."""
    import tifffile
    from PIL import Image
    from infinity_brush.data import read_image, validate_dataset
    rng = np.random.default_rng(0)
    rgba, deep = tmp_path / "rgba", tmp_path / "deep"
    for d in (rgba, deep): (d / "images").mkdir(parents=True)
    for k in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA").save(rgba / "images" / f"r{k}.png")
        v = rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16)
        if k % 2: _png16(deep / "images" / f"d{k}.png", v)
        else: tifffile.imwrite(deep / "images" / f"d{k}.tif", v, photometric="rgb")
        if k == 1: np.testing.assert_array_equal(read_image(deep / "images" / "d1.png"), np.rint(v.astype(np.float64) * 255 / 65535).astype(np.uint8))
    for d in (rgba, deep): (d / "labels.json").write_text(json.dumps({p.stem: i % 2 for i, p in enumerate(sorted((d / "images").iterdir()))}))
    for d in (rgba, deep):
        info = validate_dataset(d, 64, cond="label", num_classes=2)
        assert info["images"] == 4 and info["channels"] == 3, info          # 3 channels checked for every image
        for argv in (["train", d, "--cond", "label", "--num-classes", 2, "--pixels", 64, "--batch", 2, "--steps", 1,
                      "--dim", 16, "--depth", 1, "--T", 20, "--out", tmp_path / f"run-{d.name}"],
                     ["embed", d, "--weights", w["enc"]],
                     ["evaluate", d / "images", rgba / "images", "--extractor", "tiny-ssl", "--weights", w["enc"]]):
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err): rc = main([str(a) for a in argv])
            assert rc == 0, (argv, err.getvalue())
    assert len(list((deep / "embeddings").glob("*.npy"))) == 4
