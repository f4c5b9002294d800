"""The octave rungs: brca-infinity-brush retrained as the mini pipeline trains it, with model options changed; power per octave of its
samples against A u0 (the real images smoothed by its A) and against the real images.

    python tools/octave_rungs.py NAME 'JSON_OPTIONS' [STEPS]      # after `dvc repro` (it needs data/ and the brca embeddings)
    python tools/octave_rungs.py grid44 '{"grid": 44}' 300

Options: grid, local_radius_px (the local operator's radius in pixels at R), pixels, batch, and any `baselines.build_model`
option. Writes reports/ladder/octave/NAME.json and NAME.png (four samples at 128², 10 DDIM steps, eta 1, seeds 0-3); one
thread, so the CPU seconds compare across rungs. The mini pipeline: 300 steps of 4 x 2048 points, cosine 1e-3, EMA 0.98,
width 32, depth 1, grid 32, log-SNR shift "pixel".
"""
import json, sys, time, numpy as np, torch
from pathlib import Path
from infinity_brush.baselines import build_model, make_batch_fn, make_loss, sample_method
from infinity_brush.data import LargeImageDataset, read_image, to_uint8
from infinity_brush.diffusion import make_schedule, shift_schedule, pixel_logsnr_shift
from infinity_brush.smoothing import Mollifier, smooth_image
from infinity_brush.metrics import spectrum_ratio
from infinity_brush.train import Trainer, TrainConfig
from infinity_brush.core import seed_everything
torch.set_num_threads(1)
name, opts = sys.argv[1], json.loads(sys.argv[2]); steps = int(sys.argv[3]) if len(sys.argv) > 3 else 300
role, R = "brca", 128
sets = json.loads(Path("data/sets.json").read_text())["roles"]; emb = json.loads(Path("data/embeddings.json").read_text())["roles"]["brca"]
seed_everything(0)
kw = {"dim": 32, "depth": 1, "grid": 32, **opts}; PIX, BATCH = kw.pop("pixels", 2048), kw.pop("batch", 4)
if "local_radius_px" in kw: kw["local_radius"] = kw.pop("local_radius_px") / R
net = build_model("infinity-brush", channels=3, cond_kind="embedding", cond_dim=emb.get("dim") or 128, num_classes=None, size=R, **kw)
mol = Mollifier.for_resolution(R // 2); shift = pixel_logsnr_shift(mol.sigma, R)
sched = shift_schedule(make_schedule("cosine", net.cfg.T), shift)
ds = LargeImageDataset(Path(sets[role]["path"]), PIX, cond="embedding", mol=mol, seed=0, embeddings_dir=Path("data/embeddings/brca").resolve())
bf = make_batch_fn("infinity-brush", ds, BATCH, size=None, seed=0)
out = Path(f"scratch/octave/{name}"); out.mkdir(parents=True, exist_ok=True)
cfg = TrainConfig(steps=steps, lr=1e-3, lr_schedule="cosine", ema_decay=0.98, ema_every=1, ckpt_every=10**9, log_every=10**9, out_dir=str(out), progress=False, seed=0)
tr = Trainer(net, make_loss("infinity-brush", sched, mol, cond_drop=0.1), bf, cfg)
c0 = time.process_time(); losses = tr.fit(); cpu = time.process_time() - c0
import copy
m = copy.deepcopy(net); tr.ema.copy_to(m); m.eval()
refs = sorted(Path("data/reference/brca").glob("*.png")); real = [read_image(r) for r in refs]; realA = [smooth_image(a, mol) for a in real]
gen = []
for k in range(8):
    e = torch.from_numpy(np.load(f"data/embeddings/brca/{refs[k % len(refs)].stem}.npy"))[None]
    gen.append(to_uint8(sample_method("infinity-brush", m, R, R, e, steps=10, eta=1.0, seed=k, sched=sched, mol=mol)))
from PIL import Image; rep = Path("reports/ladder/octave"); rep.mkdir(parents=True, exist_ok=True)
Image.fromarray(np.concatenate(gen[:4], 1)).save(rep / f"{name}.png")
rec = {"variant": name, "opts": opts, "steps": steps, "cpu_s": round(cpu, 1), "loss_last": float(np.mean(losses[-15:])),
                  "ratio_vs_Au0": [round(float(x), 2) for x in spectrum_ratio(gen, realA)],
                  "ratio_vs_real": [round(float(x), 2) for x in spectrum_ratio(gen, real)],
                  "octaves": ["1-2", "2-4", "4-8", "8-16", "16-32", "32-64"], "extractor": "no extractor (pixel statistics)"}
(rep / f"{name}.json").write_text(json.dumps(rec, indent=1)); print(json.dumps(rec), flush=True)
