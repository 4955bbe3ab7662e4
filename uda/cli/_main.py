"""The ``uda`` commands. Each one builds a config and calls one library function."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from .. import __version__
from .._errors import UdaError
from .._registry import KINDS, registry
from ._app import UdaGroup
from ._util import DatasetRoot, Device, Size, dataset_overrides, load_model, quote, resolve_device, run_config

SAVE_KINDS = ("trainid", "color", "overlay", "labelid")

_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (dotted; the value is a YAML scalar). Repeatable, e.g. --set trainer.max_iters=100.",
)


@click.group(
    cls=UdaGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, "--version", "-V", prog_name="uda", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error (also: UDA_DEBUG=1).")
def main(debug: bool) -> None:
    """uda: unsupervised domain adaptation for semantic segmentation.

    \b
    Train the MLFA preset on the built-in synthetic domain pair (CPU, minutes):
        uda train mlfa_synthetic
    Reproduce a paper setup on your data:
        uda train mlfa_gta5_cityscapes --source gta5:/data/GTA5 --target cityscapes:/data/cityscapes

    User errors exit with code 2 and one line naming the problem and the fix.
    """


# --------------------------------------------------------------------------------------------- list / config


@main.command("list")
@click.argument("kind", required=False)
@click.argument("pattern", required=False, default="*")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of names (kind/name without KIND).")
def list_cmd(kind: str | None, pattern: str, as_json: bool) -> None:
    """List registered components, optionally of one KIND and matching a glob PATTERN.

    \b
    KIND is one of: model, translator, discriminator, aligner, loss, dataset,
    augmentation, recipe, config, module.

    \b
    Examples:
        uda list                      # everything, grouped by kind
        uda list config '*_synthetic' # the CPU presets
        uda list model --json         # ["deeplabv2", ...]
    """
    from .. import list_components

    if kind is not None and kind not in KINDS and any(c in kind for c in "*?["):
        kind, pattern = None, kind  # `uda list '*tiny'`: a pattern over every kind
    names = list_components(kind, pattern)
    if as_json:
        click.echo(json.dumps(names))
        return
    kinds = [kind] if kind is not None else list(KINDS)
    for k in kinds:
        reg = registry(k)
        found = reg.names(pattern)
        if not found:
            continue
        click.secho(f"{k} ({len(found)})", bold=True)
        width = max(len(n) for n in found)
        for n in found:
            doc = reg.describe(n)
            click.echo(f"  {n:<{width}}  {doc}".rstrip())


@main.group("config")
def config_group() -> None:
    """Inspect experiment configs."""


@config_group.command("show")
@click.argument("name_or_yaml")
@_set_option
def config_show(name_or_yaml: str, overrides: tuple[str, ...]) -> None:
    """Print the resolved experiment config NAME_OR_YAML as YAML.

    NAME_OR_YAML is a built-in config (`uda list config`) or a YAML file, which may start
    from a built-in one with `_base_: NAME`.

    \b
    Example:
        uda config show mlfa_gta5_cityscapes --set trainer.max_iters=1000
    """
    from ..config import load_config

    click.echo(load_config(name_or_yaml, list(overrides)).to_yaml(), nl=False)


# --------------------------------------------------------------------------------------------- train


@main.command("train")
@click.argument("name_or_yaml", required=False)
@_set_option
@click.option("--source", type=DatasetRoot(), help="Source dataset and its folder, e.g. gta5:/data/GTA5.")
@click.option("--target", type=DatasetRoot(),
              help="Target dataset and its folder, e.g. cityscapes:/data/cityscapes (validation follows it, split val).")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory [default: runs/<config name>].")
@click.option("--device", type=Device(), help="auto (default: CUDA if present), cpu, cuda or cuda:N.")
@click.option("--seed", type=int, help="Random seed (trainer.seed).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint with its saved config.yaml; "
                   "--set/--seed/... apply on top (each change is printed). NAME is then optional.")
@click.option("--overwrite", is_flag=True,
              help="The run directory may hold another run: move it aside to <dir>.replaced-<UTC time> first.")
def train_cmd(
    name_or_yaml: str | None,
    overrides: tuple[str, ...],
    source: tuple[str, str] | None,
    target: tuple[str, str] | None,
    out: str | None,
    device: str | None,
    seed: int | None,
    resume: bool,
    overwrite: bool,
) -> None:
    """Train the experiment NAME_OR_YAML and print its final evaluation.

    The run directory gets config.yaml, metrics.jsonl, checkpoints/last.pt and final.json. A directory
    that already holds a run is refused unless --resume (continue it) or --overwrite (move it aside).

    \b
    Examples:
        uda train mlfa_synthetic
        uda train advent_gta5_cityscapes --source gta5:/data/GTA5 \\
            --target cityscapes:/data/cityscapes --set model.pretrained=/weights/DeepLab_resnet_pretrained_imagenet.pth
        uda train --resume --out runs/short --set trainer.max_iters=4000
    """
    from ..config import load_config
    from ..engine import train
    from ..engine.rundir import prepare_run_dir, resume_config
    from ..evaluation import format_table

    cli = dataset_overrides("source", source) + dataset_overrides("target", target)
    cli += dataset_overrides("val", target, split="val")
    if seed is not None:
        cli.append(f"trainer.seed={seed}")
    if device is not None:
        cli.append(f"trainer.device={quote(device)}")
    if resume and overwrite:
        raise UdaError("--resume and --overwrite contradict each other; give one of them")
    if name_or_yaml is None and not (resume and out):
        raise click.UsageError("give NAME_OR_YAML (a built-in config or a YAML file), or --resume --out RUN_DIR")
    if resume:
        run_dir = Path(out) if out else Path("runs") / load_config(name_or_yaml).name
        prepare_run_dir(run_dir, resume=True)
        cfg, changes = resume_config(run_dir, cli + list(overrides))
        for line in changes:
            click.echo(f"resume: {line}", err=True)
    else:
        cfg = load_config(name_or_yaml, cli + list(overrides))
        run_dir = Path(out) if out else Path("runs") / cfg.name
        # Refuse before any output. Under torchrun with several processes the Trainer checks once the group knows
        # whether it is an elastic restart (which continues its own run; a restart on another node counts too).
        if int(os.environ.get("WORLD_SIZE", 1)) <= 1 and not int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)):
            prepare_run_dir(run_dir, overwrite=overwrite, move=False)
    click.echo(f"training {cfg.name} ({cfg.recipe.name}, {cfg.trainer.max_iters} iterations) into {run_dir}", err=True)
    result = train(cfg, run_dir, resume=resume, overwrite=overwrite)
    click.echo(format_table(result))
    click.echo(f"run directory: {run_dir}  (final.json, metrics.jsonl, checkpoints/)")


# --------------------------------------------------------------------------------------------- translate


class _RandomTargets:
    """Calls a translator that needs target images (FDA) with one random image of a target dataset per source
    image, as in training, where each source image meets a target image of its batch (seeded, so reruns match)."""

    def __init__(self, translator: Any, targets: Any, seed: int = 0) -> None:
        import torch

        if len(targets) == 0:
            raise UdaError("uda translate: the run's target dataset is empty; FDA needs target images")
        self.translator, self.targets = translator, targets
        self.generator = torch.Generator().manual_seed(seed)

    def __getattr__(self, name: str) -> Any:  # parameters(), eval(), training … of the translator
        return getattr(self.translator, name)

    def __call__(self, images: Any, target: Any = None) -> Any:
        import torch

        idx = torch.randint(len(self.targets), (images.shape[0],), generator=self.generator).tolist()
        tgt = [self.targets[i]["image"] for i in idx]
        hw = images.shape[-2:]
        tgt = torch.stack([torch.nn.functional.interpolate(t[None], size=hw, mode="bilinear", align_corners=False)[0]
                           if t.shape[-2:] != hw else t for t in tgt])
        return self.translator(images, tgt.to(images.device))


@main.command("translate")
@click.argument("run_dir_or_checkpoint", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder of the translated images.")
@click.option("--dataset", help="Registered dataset name of the images to translate [default: the run's source].")
@click.option("--root", type=click.Path(exists=True, file_okay=False),
              help="The dataset's folder [default: the run's source root].")
@click.option("--split", default="train", show_default=True, help="Dataset split.")
@click.option("--size", type=Size(), help="Translate at this size WxH [default: the run's source training size].")
@click.option("--native-size", is_flag=True, help="Translate at the images' own size instead of the training size.")
@click.option("--device", type=Device(), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the target images FDA pairs with.")
def translate_cmd(
    run_dir_or_checkpoint: str,
    out: str,
    dataset: str | None,
    root: str | None,
    split: str,
    size: tuple[int, int] | None,
    native_size: bool,
    device: str,
    seed: int,
) -> None:
    """Translate a source dataset with a run's translator (CycleGAN or FDA) into a cache folder.

    Images are written at the run's source training size (data.source.size) unless --size or
    --native-size says otherwise; FDA takes each image's low frequencies from a random image of the
    run's target dataset. The output keeps the dataset's relative paths, so it reads back with
    `--set recipe.translated_root=OUT` (labels still from the original root).

    \b
    Example:
        uda translate runs/cyclegan_gta5_cityscapes --out /data/GTA5_as_cityscapes
        uda translate translator.pt --dataset gta5 --root /data/GTA5 --out /data/GTA5_as_cityscapes
    """
    from ..config import DatasetConfig
    from ..data import build_dataset
    from ..translators import load_translator, translate_dataset

    if size is not None and native_size:
        raise click.BadParameter("give --size or --native-size, not both", param_hint="--native-size")
    cfg = None
    try:
        cfg = run_config(run_dir_or_checkpoint)
    except UdaError:
        cfg = None  # a bare translator file (save_translator): no run config
    if cfg is None and (dataset is None or root is None):
        raise UdaError(f"{run_dir_or_checkpoint}: holds no run config; pass --dataset NAME --root FOLDER")
    src = cfg.data.source if cfg is not None else None
    if dataset is None:
        dataset = src.name
    if root is None:
        root = src.root
    same_source = src is not None and dataset == src.name
    if native_size:
        ds_size = None
    elif size is not None:
        ds_size = f"{size[0]}x{size[1]}"
    else:
        ds_size = src.size if src is not None else None
    options = dict(src.options) if same_source and root == src.root else {}
    options.pop("images_root", None)  # translate the original images, not an earlier cache
    dev = resolve_device(device)
    translator = load_translator(run_dir_or_checkpoint).to(dev)
    ds = build_dataset(DatasetConfig(name=dataset, root=root, split=split, size=ds_size, options=options),
                       labels=False)
    if getattr(translator, "spec_name", None) == "fda":
        if cfg is None:
            raise UdaError(f"{run_dir_or_checkpoint}: FDA needs target images; pass an FDA run (its target dataset "
                           "is used) rather than a bare translator file")
        translator = _RandomTargets(translator, build_dataset(cfg.data.target, labels=False), seed)
    counts = translate_dataset(translator, ds, out, device=dev)
    at = "native size" if ds_size is None else ds_size
    skipped = f" ({counts['skipped']} already there)" if counts.get("skipped") else ""
    click.echo(f"translated {counts['written']} images of {dataset}/{split} at {at} into {out}{skipped}")


# --------------------------------------------------------------------------------------------- evaluate / predict


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        from ..evaluation import format_table

        click.echo(format_table(result))


@main.command("evaluate")
@click.argument("checkpoint", required=False, type=click.Path(exists=True))
@click.option("--predictions", type=click.Path(exists=True, file_okay=False),
              help="Score a folder of trainId PNG predictions instead of a checkpoint.")
@click.option("--dataset", help="Registered dataset name, e.g. cityscapes [default: the run's validation set].")
@click.option("--root", type=click.Path(exists=True, file_okay=False),
              help="The dataset's folder [default: the run's validation set's].")
@click.option("--split", help="Dataset split [default: the run's validation split, else val].")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation JSON.")
@click.option("--report", type=click.Path(file_okay=False), help="Also write the report (Markdown, CSV, PNGs) here.")
@click.option("--model", "model_name", help="Model to build for a bare weights file (e.g. an original ADVENT checkpoint).")
@click.option("--num-classes", type=int, help="Classes of that model [default: the run's, or 19].")
@click.option("--device", type=Device(), default="auto", show_default=True)
@_set_option
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
    device: str,
    overrides: tuple[str, ...],
) -> None:
    """Evaluate a CHECKPOINT (or run directory), or a folder of --predictions, on a labelled split.

    A run is scored on its own validation set with its options unless --dataset/--root say otherwise:
    --root alone keeps the run's dataset and its options (another copy of the data); --dataset names
    another dataset (its options start afresh) and needs --root. A bare weights file and --predictions
    need both. IoU values are percentages; SYNTHIA-trained (16-class) models also get mIoU16 and mIoU13.
    --set changes the evaluation, e.g. --set eval.mode=slide or --set data.val.options.KEY=VALUE.

    \b
    Examples:
        uda evaluate runs/mlfa_synthetic                     # the run's own validation set
        uda evaluate runs/mlfa_gta5_cityscapes --root /data/cityscapes --json
        uda evaluate --predictions preds/ --dataset cityscapes --root /data/cityscapes
        uda evaluate ADVENT_gta2cityscapes.pth --model deeplabv2 --dataset cityscapes --root /data/cityscapes
    """
    from ..data import build_dataset

    if (checkpoint is None) == (predictions is None):
        raise click.UsageError("give either CHECKPOINT or --predictions DIR (exactly one)")
    run_cfg = run_config(checkpoint) if checkpoint is not None else None
    sets = _val_overrides(run_cfg, dataset, root, split) + list(overrides)
    cfg = run_config(checkpoint, sets) if run_cfg is not None else None
    if cfg is None:
        cfg = _default_config(sets)
    ds = build_dataset(cfg.data.val, labels=True)
    if predictions is not None:
        from ..evaluation import evaluate_predictions

        result = evaluate_predictions(predictions, ds, protocol=cfg.eval.protocol)
    else:
        from ..evaluation import evaluate

        model, _ = load_model(checkpoint, model_name=model_name, num_classes=num_classes, overrides=sets)
        dev = resolve_device(device)
        result = evaluate(model.to(dev), ds, cfg.eval, device=dev)
    _print_result(result, as_json)
    if report:
        from ..evaluation import write_report

        write_report(result, report)
        click.echo(f"report written to {report}", err=True)


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


def _default_config(overrides: list[str]) -> Any:
    from ..config import ExperimentConfig, apply_overrides

    return ExperimentConfig.from_dict(apply_overrides(ExperimentConfig().to_dict(), overrides))


@main.command("predict")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--save", default="trainid,color", show_default=True,
              help=f"Comma-separated outputs: {', '.join(SAVE_KINDS)}.")
@click.option("--model", "model_name", help="Model to build for a bare weights file.")
@click.option("--num-classes", type=int, help="Classes of that model [default: the run's, or 19].")
@click.option("--device", type=Device(), default="auto", show_default=True)
@_set_option
def predict_cmd(
    checkpoint: str,
    inputs: tuple[str, ...],
    out: str,
    save: str,
    model_name: str | None,
    num_classes: int | None,
    device: str,
    overrides: tuple[str, ...],
) -> None:
    """Segment images (files or folders) with a CHECKPOINT and write PNGs into --out.

    trainid: trainId PNGs; color: the Cityscapes palette; overlay: colours over the image;
    labelid: Cityscapes label ids (for the official evaluation server).

    \b
    Example:
        uda predict runs/mlfa_synthetic street.png frames/ --out preds --save color,overlay
    """
    from ..evaluation import predict

    kinds = [s.strip() for s in save.split(",") if s.strip()]
    bad = [k for k in kinds if k not in SAVE_KINDS]
    if bad or not kinds:
        raise click.BadParameter(f"unknown output(s) {', '.join(bad) or '(none)'}; choose from {', '.join(SAVE_KINDS)}",
                                 param_hint="--save")
    model, cfg = load_model(checkpoint, model_name=model_name, num_classes=num_classes, overrides=list(overrides))
    eval_cfg = cfg.eval if cfg is not None else _default_config(list(overrides)).eval
    dev = resolve_device(device)
    written = predict(model.to(dev), list(inputs), out, save=kinds, cfg=eval_cfg, device=dev)
    n_images = len(written) // len(kinds)  # one file per image and kind
    click.echo(f"wrote predictions for {n_images} images ({len(written)} files: {', '.join(kinds)}) into {out}")


from ._data import data_group  # noqa: E402

main.add_command(data_group)
