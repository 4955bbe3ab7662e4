"""``uda evaluate`` and ``uda predict``: score a checkpoint or a folder of predictions, segment images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ._options import import_option, set_option
from ._util import DatasetRoot, Device, dataset_overrides, quote, resolve_device, run_config

SAVE_KINDS = ("trainid", "color", "overlay", "labelid")


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        from ..evaluation import format_table

        click.echo(format_table(result))


@click.command("evaluate")
@click.argument("checkpoint", required=False, type=click.Path(exists=True))
@click.option("--predictions", type=click.Path(exists=True, file_okay=False),
              help="Score a folder of trainId PNG predictions instead of a checkpoint.")
@click.option("--dataset", help="Registered dataset name, e.g. cityscapes [default: the run's validation set].")
@click.option("--root", type=click.Path(exists=True, file_okay=False),
              help="The dataset's folder [default: the run's validation set's].")
@click.option("--split", help="Dataset split [default: the run's validation split, else val].")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation JSON.")
@click.option("--report", type=click.Path(file_okay=False), help="Also write the report (Markdown, CSV, PNGs) here.")
@click.option("--model", "model_name",
              help="Model of a bare weights file (e.g. an original ADVENT checkpoint) [default: deeplabv2]; its "
                   "options with --set model.options.KEY=VALUE. A run checkpoint describes its own model.")
@click.option("--num-classes", type=int, help="Classes of a bare weights file's model [default: 19].")
@click.option("--target", "targets", type=DatasetRoot(), multiple=True,
              help="Domain generalization: score on this dataset (repeatable), e.g. --target acdc:/data/acdc; "
                   "writes one table (generalization.json/.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder of the --target table [default: the run directory].")
@click.option("--device", type=Device(), default="auto", show_default=True)
@set_option
@import_option
def evaluate_cmd(
    checkpoint: str | None,
    predictions: str | None,
    dataset: str | None,
    root: str | None,
    split: str | None,
    as_json: bool,
    report: str | None,
    model_name: str | None,
    num_classes: int | None,
    targets: tuple[tuple[str, str], ...],
    out_dir: str | None,
    device: str,
    overrides: tuple[str, ...],
    imports: tuple[str, ...],
) -> None:
    """Evaluate a CHECKPOINT (or run directory), or a folder of --predictions, on a labelled split.

    A run is scored on its own validation set with its options unless --dataset/--root say otherwise:
    --root alone keeps the run's dataset and its options (another copy of the data); --dataset names
    another dataset (its options start afresh) and needs --root. A bare weights file and --predictions
    need both. The model is the one the checkpoint describes (uda.load): no model options needed;
    --model/--num-classes name the network of a bare weights file.
    IoU values are percentages; SYNTHIA-trained (16-class) models also get mIoU16 and mIoU13.
    --set changes the evaluation, e.g. --set eval.mode=slide or --set data.val.options.KEY=VALUE.
    --target DATASET:ROOT (repeatable) scores the model on each dataset's --split (val by default), each as
    --dataset/--root would, and writes one table, generalization.json and generalization.md, into --out
    (default: the run directory).

    \b
    Examples:
        uda evaluate runs/mlfa_synthetic                     # the run's own validation set
        uda evaluate runs/mlfa_gta5_cityscapes --root /data/cityscapes --json
        uda evaluate --predictions preds/ --dataset cityscapes --root /data/cityscapes
        uda evaluate ADVENT_gta2cityscapes.pth --model deeplabv2 --dataset cityscapes --root /data/cityscapes
        uda evaluate runs/daformer_gta5_cityscapes --target acdc:/data/acdc --target bdd100k:/data/bdd100k
    """
    from ..data import build_dataset

    if targets:
        _generalization(checkpoint, predictions, dataset, root, report, targets, split, out_dir, as_json,
                        model_name, num_classes, device, overrides)
        return
    if out_dir is not None:
        raise click.UsageError("--out is the folder of the --target table; without --target use --report DIR")
    if (checkpoint is None) == (predictions is None):
        raise click.UsageError("give either CHECKPOINT or --predictions DIR (exactly one)")
    # A run's recorded imports are imported with its config; `--set imports=[...]` replaces them (a moved file).
    run_cfg = run_config(checkpoint, _import_sets(overrides)) if checkpoint is not None else None
    sets = _val_overrides(run_cfg, dataset, root, split) + list(overrides)
    cfg = run_config(checkpoint, sets) if run_cfg is not None else None
    if cfg is None:
        cfg = _default_config(sets)
    ds = build_dataset(cfg.data.val, labels=True)
    if predictions is not None:
        from ..evaluation import evaluate_predictions

        result = evaluate_predictions(predictions, ds, protocol=cfg.eval.protocol)
    else:
        from ..evaluation import EvalOptions, evaluate

        model = _model(checkpoint, cfg if run_cfg is not None else None, model_name, num_classes, sets)
        dev = resolve_device(device)
        result = evaluate(model.to(dev), ds, cfg.eval, EvalOptions(device=dev))
    _print_result(result, as_json)
    if report:
        from ..evaluation import write_report

        write_report(result, report)
        click.echo(f"report written to {report}", err=True)


def _generalization(checkpoint: str | None, predictions: str | None, dataset: str | None, root: str | None,
                    report: str | None, targets: tuple[tuple[str, str], ...], split: str | None, out_dir: str | None,
                    as_json: bool, model_name: str | None, num_classes: int | None, device: str,
                    overrides: tuple[str, ...]) -> None:
    """``uda evaluate CHECKPOINT --target DATASET:ROOT ...``: every target as ``--dataset/--root`` would score it."""
    from ..evaluation.generalization import evaluate_generalization, format_generalization, write_generalization

    if checkpoint is None or predictions is not None:
        raise click.UsageError("--target scores a CHECKPOINT (or run directory); it does not take --predictions")
    if dataset is not None or root is not None or report is not None:
        raise click.UsageError("--target replaces --dataset/--root/--report; give each dataset as --target NAME:ROOT")
    run_cfg = run_config(checkpoint)
    datasets, evals = [], []
    for name, target_root in targets:
        sets = _val_overrides(run_cfg, name, target_root, split) + list(overrides)
        cfg = run_config(checkpoint, sets) if run_cfg is not None else _default_config(sets)
        datasets.append(cfg.data.val)
        evals.append(cfg.eval)
    model = _model(checkpoint, run_config(checkpoint, list(overrides)), model_name, num_classes, list(overrides))
    dev = resolve_device(device)
    table = evaluate_generalization(model.to(dev), datasets, evals, device=dev)
    table["checkpoint"] = str(checkpoint)
    folder = Path(out_dir) if out_dir is not None else _run_dir(checkpoint)
    json_path, md_path = write_generalization(table, folder)
    click.echo(json.dumps(table, indent=2) if as_json else format_generalization(table))
    click.echo(f"table written to {json_path} and {md_path}", err=True)


def _run_dir(checkpoint: str) -> Path:
    """The run directory of a checkpoint argument (the folder itself, or the folder above ``checkpoints/``)."""
    p = Path(checkpoint)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent


def _model(checkpoint: str, cfg: Any, model_name: str | None, num_classes: int | None, sets: list[str]) -> Any:
    """The checkpoint's model with `uda.load`: as the checkpoint describes it (its model card, else its run
    config, with any ``--set model.*`` on top); ``--model``/``--num-classes`` only for a bare weights file."""
    from .._errors import UdaError
    from .._load import describe, load

    card = describe(checkpoint)
    if card is not None and card.get("model"):
        if model_name is not None and model_name != card["model"]:
            raise UdaError(f"--model {model_name}: {checkpoint} describes its model ({card['model']}); drop --model "
                           "(change its options with --set model.options.KEY=VALUE)")
        if num_classes is not None and num_classes != card["num_classes"]:
            raise UdaError(f"--num-classes {num_classes}: {checkpoint} describes its model "
                           f"({card['num_classes']} classes); drop --num-classes")
        if cfg is None:  # a card without a run config (a shared weights file): the card is the whole story
            return load(checkpoint)
        mc = cfg.model  # the run's config, --set model.* applied
        return load(checkpoint, model=mc.name, num_classes=mc.num_classes, options=dict(mc.options))
    mc = _default_config(sets).model  # bare weights: --model, --num-classes, --set model.options.KEY=VALUE
    return load(checkpoint, model=model_name or mc.name, num_classes=num_classes or mc.num_classes,
                options=dict(mc.options))


def _val_overrides(run_cfg: Any, dataset: str | None, root: str | None, split: str | None) -> list[str]:
    """The `data.val` overrides of `uda evaluate`: the run's own validation set unless told otherwise."""
    if run_cfg is None:  # bare weights or --predictions: nothing to fall back on
        if dataset is None or root is None:
            raise click.UsageError("--dataset and --root are needed here (no run config to take the validation set "
                                   "from)")
        return dataset_overrides("val", (dataset, root), split=split or "val")
    val = run_cfg.data.val
    out: list[str] = []
    if dataset is not None and dataset != val.name:  # another dataset: its own options, native label size
        if root is None:
            raise click.UsageError(f"--dataset {dataset} differs from the run's validation set ({val.name}); "
                                   "give its --root too")
        return dataset_overrides("val", (dataset, root), split=split or "val")
    if root is not None:  # the same dataset elsewhere: the run's options stay
        out.append(f"data.val.root={quote(root)}")
    if split is not None:
        out.append(f"data.val.split={quote(split)}")
    return out


def _import_sets(overrides: tuple[str, ...] | list[str]) -> list[str]:
    """The `--set imports=...` overrides among `overrides`."""
    return [o for o in overrides if o.partition("=")[0].strip() == "imports"]


def _default_config(overrides: list[str]) -> Any:
    from ..config import ExperimentConfig, apply_overrides

    return ExperimentConfig.from_dict(apply_overrides(ExperimentConfig().to_dict(), overrides))


@click.command("predict")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--save", default="trainid,color", show_default=True,
              help=f"Comma-separated outputs: {', '.join(SAVE_KINDS)}.")
@click.option("--submission", type=click.Choice(["acdc", "darkzurich", "cityscapes"]),
              help="Write the test server's zip instead (file names, label encoding and layout of that benchmark).")
@click.option("--model", "model_name",
              help="Model of a bare weights file [default: deeplabv2]; its options with --set model.options.KEY=VALUE. "
                   "A run checkpoint describes its own model.")
@click.option("--num-classes", type=int, help="Classes of a bare weights file's model [default: 19].")
@click.option("--device", type=Device(), default="auto", show_default=True)
@set_option
@import_option
def predict_cmd(
    checkpoint: str,
    inputs: tuple[str, ...],
    out: str,
    save: str,
    submission: str | None,
    model_name: str | None,
    num_classes: int | None,
    device: str,
    overrides: tuple[str, ...],
    imports: tuple[str, ...],
) -> None:
    """Segment images (files or folders) with a CHECKPOINT and write PNGs into --out.

    The model is the one the checkpoint (or run directory) describes; --model/--num-classes are for a
    bare weights file. trainid: trainId PNGs; color: the Cityscapes palette; overlay: colours over the image;
    labelid: Cityscapes label ids (for the official evaluation server).
    --submission acdc|darkzurich|cityscapes writes only OUT/<name>_submission.zip, exactly what that
    test server takes (docs/settings/submissions.md); --save is then not used.

    \b
    Examples:
        uda predict runs/mlfa_synthetic street.png frames/ --out preds --save color,overlay
        uda predict runs/hrda_cityscapes_acdc /data/acdc/rgb_anon/*/test --submission acdc --out submit
    """
    from ..evaluation import predict

    if submission is not None:
        _submission(checkpoint, inputs, out, submission, model_name, num_classes, device, overrides)
        return

    kinds = [s.strip() for s in save.split(",") if s.strip()]
    bad = [k for k in kinds if k not in SAVE_KINDS]
    if bad or not kinds:
        raise click.BadParameter(f"unknown output(s) {', '.join(bad) or '(none)'}; choose from {', '.join(SAVE_KINDS)}",
                                 param_hint="--save")
    cfg = run_config(checkpoint, list(overrides))
    model = _model(checkpoint, cfg, model_name, num_classes, list(overrides))
    eval_cfg = cfg.eval if cfg is not None else _default_config(list(overrides)).eval
    dev = resolve_device(device)
    written = predict(model.to(dev), list(inputs), out, save=kinds, cfg=eval_cfg, device=dev)
    n_images = len(written) // len(kinds)  # one file per image and kind
    click.echo(f"wrote predictions for {n_images} images ({len(written)} files: {', '.join(kinds)}) into {out}")


def _submission(checkpoint: str, inputs: tuple[str, ...], out: str, fmt: str, model_name: str | None,
                num_classes: int | None, device: str, overrides: tuple[str, ...]) -> None:
    from ..evaluation.submission import SUBMISSION_FORMATS, write_submission

    cfg = run_config(checkpoint, list(overrides))
    model = _model(checkpoint, cfg, model_name, num_classes, list(overrides))
    eval_cfg = cfg.eval if cfg is not None else _default_config(list(overrides)).eval
    dev = resolve_device(device)
    zip_path, members = write_submission(model.to(dev), list(inputs), out, fmt, cfg=eval_cfg, device=dev)
    rules = SUBMISSION_FORMATS[fmt]
    n_images = len(members) // len(rules.folders)
    if n_images != rules.test_images:
        click.echo(f"warning: {n_images} images, the {fmt} test split has {rules.test_images}; the server may "
                   "reject an incomplete submission", err=True)
    click.echo(f"wrote the {fmt} submission of {n_images} images ({len(members)} files) to {zip_path}")
