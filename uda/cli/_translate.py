"""``uda translate``: a source dataset through a run's translator (CycleGAN or FDA) into a cache folder."""

from __future__ import annotations

from typing import Any

import click

from .._errors import CheckpointError, UdaError
from ._options import import_option
from ._util import Device, Size, resolve_device, run_config


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


def _run_translator(path: str, cfg: Any, load_translator: Any) -> Any:
    """The run's translator: rebuilt from its config when it has no state (FDA: its ``beta`` is all there is,
    and the checkpoint holds nothing of it), else loaded with its weights from the checkpoint (CycleGAN)."""
    name = getattr(cfg.recipe, "translator", None) if cfg is not None else None
    if name:
        from .. import create

        translator = create("translator", name, **dict(getattr(cfg.recipe, "translator_options", None) or {}))
        if not translator.state_dict():  # parameter-free: the config says everything
            return translator.eval()
    try:
        return load_translator(path)
    except CheckpointError:
        if cfg is None or name:
            raise
        raise CheckpointError(f"{path}: recipe '{cfg.recipe.name}' of this run has no translator; pass a CycleGAN, "
                              "MLFA or FDA run, or a translator file with --dataset/--root") from None


@click.command("translate")
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
@import_option
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
    imports: tuple[str, ...],
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
    except CheckpointError:
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
    translator = _run_translator(run_dir_or_checkpoint, cfg, load_translator).to(dev)
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
