"""Score the command-line model and the pixel UNet of a `python -m infinity_brush.ladder --cli` run again, with another sampler.

    python tools/rescore_cli.py scratch/sets/mini-forms --eta 0 --guidance 2     # after the ladder's --cli run on that set

Both checkpoints come from RUNS/<set>-cli-defaults and RUNS/<set>-pixel-unet-vs-cli (the ladder's `compare_cli`); nothing is
retrained. The command-line model is sampled in-process through `load.load_sampler`, which is what `infinity-brush sample`
runs (11_cli tests that the two give the same image), 50 DDIM steps, the seeds and labels of `compare_cli`. Records and sample
sheets go to OUT/<set>-<rung>-eta<e>-g<g>.json/.png, in the format of the ladder's records (15_ladder's table reads them).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="the structure set the ladder's --cli run trained on")
    p.add_argument("--runs", default="scratch/ladder")
    p.add_argument("--out", default="reports/ladder/cli")
    p.add_argument("--eta", type=float, required=True)
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--per-class", type=int, default=32)
    p.add_argument("--agree-per-class", type=int, default=4)
    a = p.parse_args(argv)
    import torch
    from infinity_brush.load import load_sampler
    from infinity_brush.data import to_uint8
    from infinity_brush.smoothing import Mollifier
    from infinity_brush import ladder as L
    torch.set_num_threads(1)
    data, name, out = Path(a.data), Path(a.data).name, Path(a.out)
    tag = f"-eta{a.eta:g}-g{a.guidance:g}"
    cli_run, px_run = Path(a.runs) / f"{name}-cli-defaults", Path(a.runs) / f"{name}-pixel-unet-vs-cli"
    K = int(json.loads((data / "manifest.json").read_text())["num_classes"]); R = int(json.loads((data / "manifest.json").read_text())["size"])
    _, draw = load_sampler(cli_run / "last.safetensors")
    d = lambda size, label, s: to_uint8(draw(size, size, label, steps=50, eta=a.eta, guidance=a.guidance, seed=s, progress=False))
    rec_a = json.loads((cli_run / "record.json").read_text())
    sc = L.score_samples(d, data, K, R, Mollifier(sigma=draw.config["sigma"]), a.per_class, 1000, name="cli-defaults",
                         agree_per_class=a.agree_per_class)
    ra = {**rec_a, **sc, "rung": "cli-defaults" + tag, "guidance": a.guidance, "eta": a.eta,
          "note": f"the command line's model, sampled with 50 DDIM steps, eta {a.eta:g}, guidance {a.guidance:g}"}
    rec_b = json.loads((px_run / "record.json").read_text())
    rb = {**rec_b, **L.score_rung(px_run / "last.safetensors", per_class=a.per_class, seed=1000, real_dir=data,
                                      guidance=a.guidance, eta=a.eta, steps=50),
          "rung": "pixel-unet-vs-cli" + tag, "guidance": a.guidance, "eta": a.eta,
          "note": f"the pixel UNet for the command line's CPU time, 50 DDIM steps, eta {a.eta:g}, guidance {a.guidance:g}"}
    out.mkdir(parents=True, exist_ok=True)
    for r in (ra, rb):
        L.sample_sheet(r.pop("samples"), r.pop("labels"), out / f"{name}-{r['rung']}.png", f"{name}: {r['rung']} ({r['cpu_s'] / 60:.1f} CPU min)")
        r["commit"] = L._commit()
        (out / f"{name}-{r['rung']}.json").write_text(json.dumps(r, indent=1, default=float))
        print(json.dumps({"rung": r["rung"], "data": name, "accuracy": r["structure"]["accuracy"]["gen"],
                          "mean_fit": r["structure"]["mean_fit"]["gen"], "agreement": r["same_seed_agreement"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
