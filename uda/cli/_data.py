"""``uda data check`` and ``uda data synth``."""

from __future__ import annotations

import json

import click

from ._options import import_option
from ._util import Size


@click.group("data")
def data_group() -> None:
    """Check datasets on disk and write the built-in synthetic domains in real layouts."""


@data_group.command("check")
@click.option("--dataset", required=True,
              help="Registered dataset name: gta5, synthia, cityscapes, acdc, darkzurich, bdd100k, mapillary, folder, ...")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="The dataset's folder.")
@click.option("--split", default="train", show_default=True, help="Dataset split.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="A dataset option, e.g. -o conditions=fog,night or -o label_type=labelIds (repeatable; values "
                   "are YAML scalars).")
@click.option("--class-map", type=click.Path(), help="A class-map YAML for the stored label ids (docs/datasets.md).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@import_option
@click.pass_context
def check_cmd(ctx: click.Context, dataset: str, root: str, split: str, options: tuple[str, ...],
              class_map: str | None, as_json: bool, imports: tuple[str, ...]) -> None:
    """Count samples and class pixels of a dataset and list its problems by file.

    Problems: a missing pair, an unreadable/corrupt file, an image/label size mismatch,
    label values outside the label map. Exit code 1 when problems were found.

    \b
    Examples:
        uda data check --dataset gta5 --root /data/GTA5 --json
        uda data check --dataset acdc --root /data/ACDC --split val -o conditions=night
        uda data check --dataset folder --root /data/mine --class-map /data/mine/classes.yaml
    """
    import yaml

    from ..data import check_dataset

    opts: dict[str, object] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{item}' is not KEY=VALUE; write e.g. -o conditions=fog", param_hint="--option")
        opts[key.strip()] = yaml.safe_load(value) if value.strip() else None
    if class_map is not None:
        opts["class_map"] = class_map
    report = check_dataset(dataset, root, split, **opts)
    problems = report.get("problems", [])
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"{report['dataset']} / {report['split']}: {report['num_samples']} samples")
        pixels = report.get("class_pixels", {})
        total = sum(pixels.values()) + report.get("ignored_pixels", 0)
        if total:
            width = max(len(n) for n in pixels) if pixels else 8
            for name, n in pixels.items():
                click.echo(f"  {name:<{width}}  {n:>12}  {100.0 * n / total:5.1f}%")
            click.echo(f"  {'ignored':<{width}}  {report.get('ignored_pixels', 0):>12}")
        if problems:
            click.secho(f"{len(problems)} problem(s):", fg="red", err=True)
            for p in problems:
                click.echo(f"  {p if isinstance(p, str) else json.dumps(p)}", err=True)
        else:
            click.echo("no problems found")
    if problems:
        ctx.exit(1)


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


@data_group.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the dataset into.")
@click.option("--domain", type=click.Choice(["source", "target"]),
              help="The clean 'game' source or the 'camera' target (required for gta5/cityscapes/synthia; the "
                   "condition layouts paint their weather over 'target' by default).")
@click.option("--layout", required=True,
              type=click.Choice(["gta5", "cityscapes", "synthia", "acdc", "darkzurich", "bdd100k", "mapillary"]),
              help="On-disk layout and label encoding to write.")
@click.option("--num", required=True, type=click.IntRange(min=1),
              help="Number of images (per split for cityscapes/bdd100k/mapillary; per condition and split for acdc; "
                   "per time of day and split for darkzurich).")
@click.option("--size", type=Size(), help="Image size WxH [default: the layout's scaled-down size].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same images).")
@click.option("--splits", help="Comma-separated splits [default: cityscapes/bdd100k/mapillary train,val; "
                               "acdc/darkzurich train,val,test].")
@click.option("--conditions", help="acdc: comma-separated conditions [default: fog,night,rain,snow].")
@click.option("--times", help="darkzurich: times of day of the train split [default: day,twilight,night].")
@click.option("--ref/--no-ref", default=True, show_default=True,
              help="acdc: also write the *_rgb_ref_anon.png reference images (the same scenes, clear).")
def synth_cmd(out: str, domain: str | None, layout: str, num: int, size: tuple[int, int] | None, seed: int,
              splits: str | None, conditions: str | None, times: str | None, ref: bool) -> None:
    """Write the built-in synthetic domain pair to disk in a real dataset layout.

    Every loader and command can then be tried end to end without downloading anything. The acdc,
    darkzurich, bdd100k and mapillary layouts paint a weather or light condition over the scenes
    (fog, night, rain, snow, twilight; see docs/datasets.md).

    \b
    Examples:
        uda data synth --out /tmp/GTA5 --domain source --layout gta5 --num 20
        uda data synth --out /tmp/cityscapes --domain target --layout cityscapes --num 10 --size 128x64
        uda data synth --out /tmp/ACDC --layout acdc --num 4 --conditions fog,night
        uda data synth --out /tmp/dark_zurich --layout darkzurich --num 4
        uda data check --dataset gta5 --root /tmp/GTA5
    """
    from ..data import write_synthetic

    if domain is None:
        if layout in ("gta5", "cityscapes", "synthia"):
            raise click.UsageError(f"--domain is required for --layout {layout}; give --domain source or target")
        domain = "target"
    for name, value in (("--splits", splits), ("--conditions", conditions), ("--times", times)):
        if value is not None and layout in ("gta5", "synthia"):
            raise click.UsageError(f"{name} does not apply to --layout {layout} (one split); leave it out")
    only = {"--conditions": (conditions, "acdc"), "--times": (times, "darkzurich")}
    for name, (value, owner) in only.items():
        if value is not None and layout != owner:
            raise click.UsageError(f"{name} applies to --layout {owner} only")
    kwargs = {"size": size} if size is not None else {}
    report = write_synthetic(out, domain=domain, layout=layout, num=num, seed=seed, splits=_csv(splits),
                             conditions=_csv(conditions), times=_csv(times), ref=ref, **kwargs)
    click.echo(f"wrote {report['num_files']} synthetic {domain} images in the {layout} layout into {out}")
