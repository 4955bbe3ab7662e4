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
@click.option("--dataset", required=True, help="Registered dataset name: gta5, synthia, cityscapes, folder, ...")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="The dataset's folder.")
@click.option("--split", default="train", show_default=True, help="Dataset split.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@import_option
@click.pass_context
def check_cmd(ctx: click.Context, dataset: str, root: str, split: str, as_json: bool, imports: tuple[str, ...]) -> None:
    """Count samples and class pixels of a dataset and list its problems by file.

    Problems: a missing pair, an unreadable/corrupt file, an image/label size mismatch,
    label values outside the label map. Exit code 1 when problems were found.

    \b
    Example:
        uda data check --dataset gta5 --root /data/GTA5 --json
    """
    from ..data import check_dataset

    report = check_dataset(dataset, root, split)
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


@data_group.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the dataset into.")
@click.option("--domain", required=True, type=click.Choice(["source", "target"]), help="The clean 'game' source or the 'camera' target.")
@click.option("--layout", required=True, type=click.Choice(["gta5", "cityscapes", "synthia"]),
              help="On-disk layout and label encoding to write.")
@click.option("--num", required=True, type=click.IntRange(min=1), help="Number of images (per split for cityscapes).")
@click.option("--size", type=Size(), help="Image size WxH [default: the layout's scaled-down size].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same images).")
def synth_cmd(out: str, domain: str, layout: str, num: int, size: tuple[int, int] | None, seed: int) -> None:
    """Write the built-in synthetic domain pair to disk in a real dataset layout.

    Every loader and command can then be tried end to end without downloading anything.

    \b
    Examples:
        uda data synth --out /tmp/GTA5 --domain source --layout gta5 --num 20
        uda data synth --out /tmp/cityscapes --domain target --layout cityscapes --num 10 --size 128x64
        uda data check --dataset gta5 --root /tmp/GTA5
    """
    from ..data import write_synthetic

    kwargs = {"size": size} if size is not None else {}
    write_synthetic(out, domain=domain, layout=layout, num=num, seed=seed, **kwargs)
    click.echo(f"wrote {num} synthetic {domain} images in the {layout} layout into {out}")
