"""The README's example: sample the mini pipeline's shapes model, one image of each label at 64² and at 256².

    python tools/readme_example.py                      # after `dvc repro`: writes reports/figures/readme-example.png
    python tools/readme_example.py CHECKPOINT --out PNG  # any label-conditioned checkpoint

The model is `shapes-infinity-brush` of `params.yaml`, trained on mini-forms at 64² (label 0: disc, label 1: square).
It samples at 256² as it does at 64²: the same seed gives the same noise function at both sizes (and, where the model is sure of its drawing, the same image).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CKPT = "models/shapes-infinity-brush/last.safetensors"   # written by `dvc repro` (its train@shapes-infinity-brush stage)
OUT = "reports/figures/readme-example.png"
NAMES = {0: "disc", 1: "square"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=CKPT, help=f"a label-conditioned checkpoint (default: {CKPT})")
    p.add_argument("--out", default=OUT, help=f"the figure (default: {OUT})")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps")
    a = p.parse_args(argv)
    ckpt, out = (ROOT / a.checkpoint).resolve(), ROOT / a.out
    if not ckpt.is_file():
        print(f"readme_example: no checkpoint at {a.checkpoint}: run `dvc repro` first (it trains shapes-infinity-brush)",
              file=sys.stderr)
        return 1

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from infinity_brush.core import atomic_path
    from infinity_brush.load import load_sampler
    from infinity_brush.sampler import save_image, to_uint8

    model, sample = load_sampler(ckpt)                          # EMA weights, with the A and schedule it was trained with
    fig, axs = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, (label, size) in zip(axs, [(0, 64), (1, 64), (0, 256), (1, 256)]):
        img = sample(size, size, label, steps=a.steps, eta=0.0, guidance=2.0, seed=0)   # the CLI defaults; (size, size, 3) in [-1, 1]
        if (label, size) == (1, 256): save_image(img, out.with_name(out.stem + "-square.png"))   # the README's example
        ax.imshow(to_uint8(img), interpolation="nearest")
        ax.set_title(f"label {label} ({NAMES.get(label, '?')}), {size}×{size}", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"{Path(a.checkpoint).parent.name}: {a.steps} DDIM steps, η = 0, guidance 2, seed 0", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} and {out.stem}-square.png beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
