"""Draw the documentation's pictures with uda itself: the synthetic domain pair, FDA translations, predictions,
and source-only beside an adapted model.

    python examples/make_pictures.py                         # trains a short source-only and FDA model first
    python examples/make_pictures.py --run runs/mlfa_synthetic   # predictions of an existing run instead

Writes ``synthetic_pair.png``, ``fda_translation.png``, ``predictions.png`` and ``source_only_vs_adapted.png``
into ``--out`` (default ``docs/assets``). Every pixel comes from this project's code: the synthetic renderer, the FDA
translator, a model trained by ``uda.engine.train`` and the official Cityscapes palette (``uda.labels.colorize``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import uda
from uda.config import load_config
from uda.labels import colorize


def _rgb(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _grid(rows: list[list[np.ndarray]], titles: list[str], scale: int = 2, pad: int = 4) -> Image.Image:
    h, w = rows[0][0].shape[:2]
    h, w = h * scale, w * scale
    head = 16
    canvas = Image.new("RGB", (len(titles) * (w + pad) + pad, head + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        draw.text((pad + c * (w + pad), 2), title, fill="black")
    for r, row in enumerate(rows):
        for c, arr in enumerate(row):
            tile = Image.fromarray(arr).resize((w, h), Image.NEAREST)
            canvas.paste(tile, (pad + c * (w + pad), head + pad + r * (h + pad)))
    return canvas


def synthetic_pair(out: Path, size: str, n: int) -> None:
    src = uda.create("dataset", "synthetic", domain="source", num=n, size=size, seed=0)
    tgt = uda.create("dataset", "synthetic", domain="target", num=n, size=size, seed=0)
    rows = [[_rgb(src[i]["image"]), colorize(src[i]["label"].numpy()), _rgb(tgt[i]["image"]),
             colorize(tgt[i]["label"].numpy())] for i in range(n)]
    _grid(rows, ["source ('game')", "source labels", "target ('camera')", "target labels"]).save(out / "synthetic_pair.png")


def fda_translation(out: Path, size: str, n: int) -> None:
    src = uda.create("dataset", "synthetic", domain="source", num=n, size=size, seed=1)
    tgt = uda.create("dataset", "synthetic", domain="target", num=n, size=size, seed=2)
    betas = (0.01, 0.05, 0.09)
    rows = []
    for i in range(n):
        s, t = src[i]["image"][None], tgt[i]["image"][None]
        rows.append([_rgb(s[0])] + [_rgb(uda.create("translator", "fda", beta=b)(s, t)[0]) for b in betas]
                    + [_rgb(t[0])])
    _grid(rows, ["source"] + [f"FDA beta={b}" for b in betas] + ["target (style)"]).save(out / "fda_translation.png")


def predictions(out: Path, run: Path, size: str, n: int) -> None:
    from uda.config import load_config
    from uda.evaluation import infer

    model, cfg = uda.load(run), load_config(Path(run) / "config.yaml")
    val = uda.create("dataset", "synthetic", domain="target", split="val", num=n, size=size, seed=0)
    rows = []
    for i in range(n):
        item = val[i]
        with torch.no_grad():
            logits = infer(model, item["image"][None], cfg.eval, out_size=tuple(item["label"].shape))
        pred = colorize(logits.argmax(1)[0].numpy())
        overlay = (0.5 * _rgb(item["image"]) + 0.5 * pred).astype(np.uint8)
        rows.append([_rgb(item["image"]), colorize(item["label"].numpy()), pred, overlay])
    _grid(rows, ["target image", "ground truth", f"prediction ({cfg.recipe.name})", "overlay"]).save(
        out / "predictions.png")


def _predict(run: Path, item: dict) -> tuple[np.ndarray, str]:
    from uda.config import load_config
    from uda.evaluation import infer

    model, cfg = uda.load(run), load_config(Path(run) / "config.yaml")
    with torch.no_grad():
        logits = infer(model, item["image"][None], cfg.eval, out_size=tuple(item["label"].shape))
    return colorize(logits.argmax(1)[0].numpy()), cfg.recipe.name


def comparison(out: Path, source_only: Path, adapted: Path, size: str, n: int) -> None:
    """Target images, ground truth, and the predictions of a source-only and an adapted run side by side."""
    val = uda.create("dataset", "synthetic", domain="target", split="val", num=n, size=size, seed=0)
    rows, names = [], []
    for i in range(n):
        item = val[i]
        (p_src, n_src), (p_ada, n_ada) = _predict(source_only, item), _predict(adapted, item)
        rows.append([_rgb(item["image"]), colorize(item["label"].numpy()), p_src, p_ada])
        names = [n_src, n_ada]
    _grid(rows, ["target image", "ground truth", f"{names[0]} (no adaptation)", f"{names[1]} (adapted)"]).save(
        out / "source_only_vs_adapted.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/assets", help="folder for the PNGs")
    parser.add_argument("--run", help="a run directory to predict with (default: train one briefly)")
    parser.add_argument("--config", default="source_only_synthetic", help="config to train when --run is absent")
    parser.add_argument("--iters", type=int, default=300, help="training iterations when --run is absent")
    parser.add_argument("--train-dir", default="runs/pictures", help="run directory of that training")
    parser.add_argument("--adapted-run", help="an adapted run for the comparison (default: train one briefly)")
    parser.add_argument("--adapted-config", default="fda_synthetic", help="config to train when --adapted-run is absent")
    parser.add_argument("--size", default="128x64")
    parser.add_argument("--rows", type=int, default=3)
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    synthetic_pair(out, args.size, args.rows)
    fda_translation(out, args.size, args.rows)
    from uda.engine import train

    sets = [f"trainer.max_iters={args.iters}", f"trainer.checkpoint_every={args.iters}", "trainer.tensorboard=false",
            "trainer.device=cpu", "data.val.options.num=8"]
    run = Path(args.run or args.train_dir)
    if not args.run:
        train(load_config(args.config, sets), run)
    predictions(out, run, args.size, args.rows)
    adapted = Path(args.adapted_run or f"{args.train_dir}_adapted")
    if not args.adapted_run:
        train(load_config(args.adapted_config, sets), adapted)
    comparison(out, run, adapted, args.size, args.rows)
    print(f"pictures written to {out}")


if __name__ == "__main__":
    main()
