"""The ``uda`` group and its commands. Each one builds a config and calls one library function.

Here: ``list``, ``config show`` and ``train``; ``evaluate`` and ``predict`` live in ``_evaluate``,
``translate`` in ``_translate`` and ``data`` in ``_data``, all added to `main` at the end of this module."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click

from .. import __version__
from .._errors import UdaError
from .._registry import KINDS, registry
from ._app import UdaGroup
from ._data import data_group
from ._evaluate import SAVE_KINDS, evaluate_cmd, predict_cmd
from ._export import export_cmd
from ._options import import_option, set_option
from ._translate import translate_cmd
from ._util import DatasetRoot, Device, dataset_overrides, quote

__all__ = ["SAVE_KINDS", "main"]


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

    \b
    Your own components: `--import my_parts.py` on a command (a run records it), or
    an installed package with an entry point in the group `uda.plugins` (loaded here).
    """
    from ..plugins import load_plugins

    load_plugins()


# --------------------------------------------------------------------------------------------- list / config


@main.command("list")
@click.argument("kind", required=False)
@click.argument("pattern", required=False, default="*")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of names (kind/name without KIND).")
@import_option
def list_cmd(kind: str | None, pattern: str, as_json: bool, imports: tuple[str, ...]) -> None:
    """List registered components, optionally of one KIND and matching a glob PATTERN.

    \b
    KIND is one of: model, translator, discriminator, aligner, loss, dataset,
    augmentation, recipe, config, module, teacher, pseudo_label, mixing, sampler.
    --import FILE.py|MODULE lists what your module registers, too.

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
@set_option
@import_option
def config_show(name_or_yaml: str, overrides: tuple[str, ...], imports: tuple[str, ...]) -> None:
    """Print the resolved experiment config NAME_OR_YAML as YAML.

    NAME_OR_YAML is a built-in config (`uda list config`) or a YAML file, which may start
    from a built-in one with `_base_: NAME`.

    \b
    Example:
        uda config show mlfa_gta5_cityscapes --set trainer.max_iters=1000
    """
    from ..config import load_config

    click.echo(load_config(name_or_yaml, list(overrides), imports=imports).to_yaml(), nl=False)


# --------------------------------------------------------------------------------------------- train


class SeedsOption(click.Option):
    """``--seeds 0 1 2``: the option takes every integer word that follows it (also ``--seeds 0,1,2`` and
    repeated ``--seeds``), so the documented space-separated form works although click options have fixed nargs."""

    greedy = True  # read by tools that parse a command line without running it (tests/docs)

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name)  # click's parser has no public hook for a greedy option
            if opt is None:
                continue
            store = opt.process

            def process(value: Any, state: Any, store=store) -> None:
                for part in str(value).split(","):
                    store(part, state)
                while state.rargs and re.fullmatch(r"\d+", state.rargs[0]):
                    store(state.rargs.pop(0), state)

            opt.process = process


@main.command("train")
@click.argument("name_or_yaml", required=False)
@set_option
@click.option("--source", type=DatasetRoot(), help="Source dataset and its folder, e.g. gta5:/data/GTA5.")
@click.option("--target", type=DatasetRoot(),
              help="Target dataset and its folder, e.g. cityscapes:/data/cityscapes (validation follows it, split val).")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory [default: runs/<config name>].")
@click.option("--device", type=Device(), help="auto (default: CUDA if present), cpu, cuda or cuda:N.")
@click.option("--seed", type=int, help="Random seed (trainer.seed).")
@click.option("--seeds", cls=SeedsOption, type=click.IntRange(min=0), multiple=True, metavar="N [N ...]",
              help="Train once per seed, one after another, into <out>/seed<N>/, then write <out>/seeds.json and "
                   "seeds.md (mean ± std per metric and class). With --resume: finished seeds are kept, "
                   "unfinished ones continue.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint with its saved config.yaml; "
                   "--set/--seed/... apply on top (each change is printed). NAME is then optional.")
@click.option("--overwrite", is_flag=True,
              help="The run directory may hold another run: move it aside to <dir>.replaced-<UTC time> first.")
@import_option
def train_cmd(
    name_or_yaml: str | None,
    overrides: tuple[str, ...],
    source: tuple[str, str] | None,
    target: tuple[str, str] | None,
    out: str | None,
    device: str | None,
    seed: int | None,
    seeds: tuple[int, ...],
    resume: bool,
    overwrite: bool,
    imports: tuple[str, ...],
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
        uda train --import my_recipe.py my_recipe_synthetic   # see docs/cli.md, "Your own code"
        uda train source_only_synthetic --seeds 0 1 2 --out runs/so3   # runs/so3/seed0 ... + seeds.json
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
    if seeds:
        _train_seeds(name_or_yaml, cli + list(overrides), seeds, seed, out, resume, overwrite)
        return
    if resume:
        run_dir = Path(out) if out else Path("runs") / load_config(name_or_yaml, imports=imports).name
        prepare_run_dir(run_dir, resume=True)
        cfg, changes = resume_config(run_dir, cli + list(overrides), imports=imports)
        for line in changes:
            click.echo(f"resume: {line}", err=True)
    else:
        cfg = load_config(name_or_yaml, cli + list(overrides), imports=imports)
        run_dir = Path(out) if out else Path("runs") / cfg.name
        # Refuse before any output. Under torchrun with several processes the Trainer checks once the group knows
        # whether it is an elastic restart (which continues its own run; a restart on another node counts too).
        if int(os.environ.get("WORLD_SIZE", 1)) <= 1 and not int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)):
            prepare_run_dir(run_dir, overwrite=overwrite, move=False)
    click.echo(f"training {cfg.name} ({cfg.recipe.name}, {cfg.trainer.max_iters} iterations) into {run_dir}", err=True)
    result = train(cfg, run_dir, resume=resume, overwrite=overwrite)
    click.echo(format_table(result))
    click.echo(f"run directory: {run_dir}  (final.json, metrics.jsonl, checkpoints/)")


def _train_seeds(name_or_yaml: str | None, overrides: list[str], seeds: tuple[int, ...], seed: int | None,
                 out: str | None, resume: bool, overwrite: bool) -> None:
    """``uda train --seeds``: sequential runs in <out>/seed<N>/ and the summary (`uda.engine.seeds`)."""
    from ..config import load_config
    from ..engine.seeds import train_seeds
    from ..evaluation.report import format_seeds_table

    if seed is not None:
        raise UdaError("--seed and --seeds contradict each other; give --seeds N [N ...] alone")
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise UdaError("--seeds trains the seeds one after another in one process; run it without torchrun, or "
                       "start one torchrun per seed with --seed N --out DIR/seedN")
    cfg = load_config(name_or_yaml, overrides) if name_or_yaml is not None else None
    run_dir = Path(out) if out else Path("runs") / cfg.name  # type: ignore[union-attr]  (no NAME needs --out)

    def announce(s: int, d: Path, state: str) -> None:
        verb = {"train": "training", "resume": "resuming", "done": "already finished:"}[state]
        click.echo(f"seed {s}: {verb} {d}", err=True)

    summary = train_seeds(cfg, run_dir, seeds, resume=resume, overwrite=overwrite, overrides=overrides,
                          on_seed=announce)
    click.echo(format_seeds_table(summary))
    click.echo(f"multi-seed run: {run_dir}  (seeds.json, seeds.md, seed<N>/)")


# --------------------------------------------------------------------------------------------- the others

main.add_command(translate_cmd)
main.add_command(evaluate_cmd)
main.add_command(predict_cmd)
main.add_command(data_group)
main.add_command(export_cmd)
