"""Evaluate a checkpoint released with ADVENT or AdaptSegNet (their key layout) with uda's evaluation protocol.

The original DeepLab-v2 checkpoints name the backbone ``conv1``, ``bn1``, ``layer1`` … ``layer4``, the auxiliary
classifier on layer3 ``layer5`` and the main classifier ``layer6``; ``uda.models.load_weights`` recognises that
layout (and the Caffe BGR input normalization it implies), so a released model evaluates as is. AdaptSegNet's
released models were trained with a classifier that sums only its first two branches (its code returns from
inside the summing loop): ``--release adaptsegnet`` builds the model with ``classifier_branches=2`` to match.

    python examples/evaluate_original_checkpoint.py --checkpoint GTA2Cityscapes_multi-ed35151c.pth \\
        --release adaptsegnet --dataset cityscapes --root /data/cityscapes
    # an ADVENT checkpoint (all four branches), also from the command line:
    python examples/evaluate_original_checkpoint.py --checkpoint gta2cityscapes_advent.pth --release advent \\
        --dataset cityscapes --root /data/cityscapes
    uda evaluate gta2cityscapes_advent.pth --model deeplabv2 --dataset cityscapes --root /data/cityscapes

Without ``--checkpoint`` the script makes a demo: it writes a tiny Cityscapes-layout tree of the synthetic target,
saves a small DeepLab-v2 under the ORIGINAL key names, loads it back, checks that it computes the same function
and evaluates it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import uda
from uda.config import EvalConfig
from uda.data import write_synthetic
from uda.evaluation import evaluate, format_table
from uda.models import load_weights


def to_original_layout(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our DeepLab-v2 state dict under the key names of the ADVENT/AdaptSegNet releases."""
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("backbone."):
            out[k[len("backbone."):]] = v
        elif k.startswith("head.branches."):
            out["layer6.conv2d_list." + k[len("head.branches."):]] = v
        elif k.startswith("aux_head.branches."):
            out["layer5.conv2d_list." + k[len("aux_head.branches."):]] = v
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="an original ADVENT/AdaptSegNet .pth file (omit for the demo)")
    parser.add_argument("--model", default=None, help="registered model [deeplabv2; deeplabv2_tiny in the demo]")
    parser.add_argument("--release", choices=("advent", "adaptsegnet"), default="advent",
                        help="whose checkpoint: adaptsegnet's sum only two classifier branches [advent]")
    parser.add_argument("--dataset", default="cityscapes")
    parser.add_argument("--root", help="dataset folder (the demo writes one)")
    parser.add_argument("--size", default="1024x512", help="evaluation input size WxH (the papers' protocol)")
    parser.add_argument("--out", default="runs/original_checkpoint_demo", help="demo files go here")
    parser.add_argument("--num", type=int, default=4, help="demo: validation images to write")
    args = parser.parse_args(argv)

    checkpoint, root, name = args.checkpoint, args.root, args.model or "deeplabv2"
    if checkpoint is None:  # demo: a tiny model saved under the original key names
        name = args.model or "deeplabv2_tiny"
        out = Path(args.out)
        reference = uda.create("model", name, num_classes=19, normalization="caffe").eval()
        checkpoint = out / "advent_layout.pth"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save(to_original_layout(reference), checkpoint)
        if root is None:
            root = out / "cityscapes"
            write_synthetic(root, domain="target", layout="cityscapes", num=args.num, size=(128, 64), splits=("val",))

    branches = 2 if args.release == "adaptsegnet" else None
    if args.checkpoint is None and branches is not None:
        reference.head.num_summed = reference.aux_head.num_summed = branches  # the demo saves that classifier too
    model = uda.create("model", name, num_classes=19, classifier_branches=branches)
    report = load_weights(model, checkpoint)
    print(f"loaded {checkpoint}: layout {report.layout}, input normalization {report.normalization}")
    if args.checkpoint is None:
        x = torch.rand(1, 3, 64, 128)
        with torch.no_grad():
            same = torch.equal(model.eval()(x).logits, reference(x).logits)
        print(f"same outputs as the model that was saved: {same}")
        assert same

    dataset = uda.create("dataset", args.dataset, root=root, split="val")
    result = evaluate(model, dataset, EvalConfig(size=args.size if args.checkpoint else "128x64"), device="cpu")
    print(format_table(result, setup="gta5" if args.checkpoint else None))  # published rows only for real runs
    return result


if __name__ == "__main__":
    main()
