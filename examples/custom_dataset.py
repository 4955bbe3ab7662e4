"""Train on your own data with the ``folder`` dataset: an image folder, a label folder and a label map.

Your labels may use any ids; a small YAML file says which Cityscapes class (trainId) each id is, and ids it does
not list are reported instead of being silently mapped. This script first writes such a dataset by hand (street
scenes from the built-in synthetic source, labels stored as "our own" ids), then checks it and trains on it.

    python examples/custom_dataset.py --out /tmp/my_data_run
    python examples/custom_dataset.py --num 4 --iters 2 --size 64x32 --out /tmp/quick
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import uda
from uda.config import DatasetConfig, load_config
from uda.data import check_dataset
from uda.engine import train
from uda.evaluation import format_table

# Our own label ids: 0 = unlabelled, then 10 + Cityscapes trainId (a layout no loader knows by default).
OWN_IDS = {0: 255, **{10 + t: t for t in range(19)}}


def write_folder_dataset(root: Path, num: int, size: str) -> None:
    """Write ``root/images/scene_XXX.jpg``, ``root/labels/scene_XXX.png`` and ``root/label_map.yaml``."""
    scenes = uda.create("dataset", "synthetic", domain="source", num=num, size=size, seed=7)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(len(scenes)):
        item = scenes[i]
        rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(rgb).save(root / "images" / f"scene_{i:03d}.jpg", quality=95)
        trainid = item["label"].numpy()
        own = np.where(trainid == 255, 0, trainid + 10).astype(np.uint8)
        Image.fromarray(own).save(root / "labels" / f"scene_{i:03d}.png")
    (root / "label_map.yaml").write_text("".join(f"{k}: {v}\n" for k, v in OWN_IDS.items()))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/custom_dataset", help="run directory (the dataset goes in OUT/data)")
    parser.add_argument("--num", type=int, default=100, help="images to write")
    parser.add_argument("--iters", type=int, default=200, help="training iterations")
    parser.add_argument("--size", default="128x64", help="image size WxH")
    args = parser.parse_args(argv)

    root = Path(args.out) / "data"
    write_folder_dataset(root, args.num, args.size)
    options = {"images": "images", "labels_dir": "labels", "image_suffix": ".jpg", "label_suffix": ".png",
               "label_map": str(root / "label_map.yaml")}

    report = check_dataset("folder", root, "train", **options)  # the same as `uda data check`
    print(f"{report['num_samples']} samples, problems: {report['problems'] or 'none'}")

    cfg = load_config("source_only_synthetic", [
        f"trainer.max_iters={args.iters}", f"trainer.checkpoint_every={args.iters}", "trainer.tensorboard=false",
        f"data.target.size={args.size}", f"data.val.size={args.size}", f"eval.size={args.size}",
        "data.target.options.num=8", "data.val.options.num=4", "trainer.device=cpu",
    ])
    cfg.data.source = DatasetConfig(name="folder", root=str(root), size=args.size, options=options)
    result = train(cfg, Path(args.out) / "run")
    print(format_table(result))
    return result


if __name__ == "__main__":
    main()
