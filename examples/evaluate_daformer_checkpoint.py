"""Evaluate a checkpoint released with DAFormer (Hoyer et al., CVPR 2022) with ``uda evaluate``.

The released files (e.g. ``gta2cs_daformer_mitb5.pth``) are mmcv checkpoints ``{"meta": ..., "state_dict": ...}``
whose keys carry the prefixes ``model.`` (the student), ``ema_model.`` (the EMA teacher) and ``imnet_model.`` (the
frozen ImageNet encoder of the feature distance), each followed by the mmseg names ``backbone.*`` (MiT) and
``decode_head.*``. ``uda`` reads that layout directly and keeps the student, as the original test tool does:

    uda evaluate gta2cs_daformer_mitb5.pth --model daformer_mitb5 --dataset cityscapes --root /data/cityscapes
    python examples/evaluate_daformer_checkpoint.py --checkpoint gta2cs_daformer_mitb5.pth \\
        --root /data/cityscapes

The protocol is DAFormer's: the whole Cityscapes val image resized to 1024x512, predictions upsampled to the
2048x1024 ground truth. The MiT code and weights carry the NVIDIA Source Code License (non-commercial use).

Without ``--checkpoint`` the script makes a demo: it writes a tiny Cityscapes-layout tree of the synthetic target,
saves a `daformer_tiny` under the RELEASED layout (student, teacher and ImageNet copies, deterministic from a
seed), runs ``uda evaluate`` on it and checks that the loaded network is the student.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from click.testing import CliRunner

import uda
from uda.cli import main as uda_main
from uda.data import write_synthetic
from uda.models import load_weights


def to_released_layout(student: torch.nn.Module, teacher: torch.nn.Module, imnet: torch.nn.Module) -> dict:
    """Our DAFormer state dicts as one mmcv checkpoint with DAFormer's ``model.``/``ema_model.``/``imnet_model.``."""
    def mmseg(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in model.state_dict().items():
            if k.startswith("encoder."):
                out["backbone." + k[len("encoder."):]] = v
            elif k.startswith("head."):
                out["decode_head." + k[len("head."):]] = v
        return out

    state = {f"{prefix}.{k}": v for prefix, m in (("model", student), ("ema_model", teacher), ("imnet_model", imnet))
             for k, v in mmseg(m).items()}
    return {"meta": {"mmseg_version": "0.16.0", "iter": 40000, "CLASSES": uda.labels.CITYSCAPES_CLASSES},
            "state_dict": state}


def make_demo(out: Path, seed: int = 0) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    """A deterministic released-layout checkpoint of `daformer_tiny`: returns (path, student, teacher)."""
    nets = []
    for i in range(3):  # student, teacher, ImageNet copy: three different networks
        torch.manual_seed(seed + i)
        nets.append(uda.create("model", "daformer_tiny", num_classes=19).eval())
    path = out / "daformer_release_layout.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_released_layout(*nets), path)
    return path, nets[0], nets[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a released DAFormer .pth file (omit for the demo)")
    parser.add_argument("--model", default=None, help="registered model [daformer_mitb5; daformer_tiny in the demo]")
    parser.add_argument("--dataset", default="cityscapes")
    parser.add_argument("--root", help="dataset folder (the demo writes one)")
    parser.add_argument("--out", default="runs/daformer_checkpoint_demo", help="demo files go here")
    parser.add_argument("--num", type=int, default=4, help="demo: validation images to write")
    args = parser.parse_args(argv)

    checkpoint, root, name = args.checkpoint, args.root, args.model or "daformer_mitb5"
    sets: list[str] = []
    if checkpoint is None:
        name = args.model or "daformer_tiny"
        out = Path(args.out)
        checkpoint, student, teacher = make_demo(out)
        model = uda.create("model", name, num_classes=19)
        report = load_weights(model, checkpoint)
        x = torch.rand(1, 3, 64, 128)
        with torch.no_grad():
            same = torch.equal(model.eval()(x).logits, student(x).logits)
            not_teacher = not torch.equal(model(x).logits, teacher(x).logits)
        print(f"loaded {checkpoint}: layout {report.layout}; the student: {same and not_teacher}")
        assert same and not_teacher
        if root is None:
            root = out / "cityscapes"
            write_synthetic(root, domain="target", layout="cityscapes", num=args.num, size=(128, 64), splits=("val",))
        sets = ["--set", "eval.size=128x64"]
    cmd = ["evaluate", str(checkpoint), "--model", name, "--dataset", args.dataset, "--root", str(root), "--json",
           "--device", "cpu", *sets]
    print("uda " + " ".join(cmd))
    res = CliRunner().invoke(uda_main, cmd, catch_exceptions=False)
    if res.exit_code != 0:
        raise SystemExit(res.output)
    result = json.loads(res.stdout[res.stdout.index("{"):])
    print(f"mIoU {result['miou']:.2f} on {result['num_images']} images")
    return result


if __name__ == "__main__":
    main()
