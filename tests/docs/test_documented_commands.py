"""Every command shown in README.md and docs/ runs (smoke-sized), or, where it cannot run here, is checked for drift.

What counts as a documented command: a line of a fenced block tagged ``bash``, ``sh``, ``shell``, ``console`` or
untagged, that starts with ``uda ``, ``python -m uda``, ``torchrun ... -m uda``, ``python examples/...``,
``python benchmarks/...``, ``pip install`` or ``pytest`` (after ``$ `` in a console block; after a launcher such as
``srun``; each part of ``a && b`` on its own). Lines ending in ``\\`` are joined, ``# comments`` dropped. In a
``console`` block the lines after a ``$ cmd`` are its output: a documented ``error: ...`` line means the command
must fail with exit code 2 and print that line (up to a trailing ``...``).

Drift (every command, run or not): the subcommand exists and each ``--option`` is a parameter of that click command
(torchrun's options: its own argument parser; a script's: an ``"--option"`` literal in its source; ``pip install``
extras: ``[project.optional-dependencies]``), there are not more arguments than the command takes, the config NAME
of ``uda train``/``uda config show`` loads with the command's ``--set`` overrides, and ``DATASET:ROOT`` names a
registered dataset.

Rewrite rules of a run (each page runs its commands in order, in a fresh working directory):

1. ``/data/GTA5``, ``/data/SYNTHIA``, ``/data/cityscapes`` (or ``/data/cs``), ``/data/acdc``, ``/data/dark_zurich``,
   ``/data/bdd100k`` and ``/data/mapillary`` are synthetic trees in those layouts written by ``uda data synth``
   (64×32); any other absolute path ``/P`` becomes ``<page dir>/P``; ``examples/X`` is the repository's file.
2. ``uda train`` gets smoke-size ``--set`` overrides appended (last wins): 2 iterations (2 translator iterations),
   64×32 images (128×64 for multi-level feature alignment, 64×64 crops for HRDA), batch 2, 8/8/2 synthetic
   images, a 4-wide tiny model, evaluation only at the end, no TensorBoard, ``--device cpu``. A command whose
   documented output is an error gets them *before* its own ``--set`` so its own values win.
3. ``uda data synth`` writes at most 4 images at 64×32.
4. A run directory (or a file in one, ``runs/X/checkpoints/last.pt``) that ``uda evaluate/predict/translate/
   export/...`` reads and the page does not train (runnably) is first trained as ``uda train <recipe>_synthetic`` (rule 2) into that path, the recipe read from the
   directory's name (``runs/mlfa_gta5_cityscapes`` → ``mlfa_synthetic``); an identical training command is
   trained once per session and copied.
5. An input image that does not exist (``street.png``) is a synthetic target image; ``--device cuda*`` becomes
   ``--device cpu`` without a GPU.
6. ``python examples/X.py``: the smoke arguments of `SCRIPT_SMOKE` are appended; ``torchrun`` runs
   ``python -m torch.distributed.run`` with a free ``--master-port`` and rule 2.

`NOT_RUN` lists (by pattern, with the reason) the commands that are only checked for drift. A failure names the
file, line, the command as documented and as run, and the reason.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from uda.cli import main

ROOT = Path(__file__).resolve().parents[2]
LANGS = {"bash", "sh", "shell", "console", ""}
SIZE = "64x32"
# Documented data folders → the synthetic tree of that layout (rule 1).
DATA_ROOTS = {"/data/GTA5": "GTA5", "/data/SYNTHIA": "SYNTHIA", "/data/cityscapes": "cityscapes", "/data/cs": "cityscapes",
              "/data/acdc": "acdc", "/data/ACDC": "acdc", "/data/dark_zurich": "dark_zurich",
              "/data/bdd100k": "bdd100k", "/data/mapillary": "mapillary"}
SCRIPT_SMOKE = {"examples/custom_recipe.py": ["--iters", "2", "--num", "4"]}

# Commands only checked for drift: (fnmatch pattern on the command as written, comment dropped; why it cannot run).
NOT_RUN = [
    ("uda train *_gta5_cityscapes*", "paper-size run (GTA5/Cityscapes-size data, ResNet-101/MiT-B5/ViT-L, GPU hours); "
                                     "the same recipe's *_synthetic preset runs on the recipe pages"),
    ("uda train *_synthia_cityscapes*", "paper-size run (SYNTHIA/Cityscapes, GPU hours)"),
    ("uda train *_cityscapes_acdc*", "paper-size run (Cityscapes/ACDC at 2048x1024, MiT-B5 weights, GPU hours); "
                                     "the *_acdc_synthetic presets run in tests/configs/test_settings.py"),
    ("uda train *_cityscapes_darkzurich*", "paper-size run (Cityscapes/Dark Zurich, MiT-B5 weights, GPU hours)"),
    ("* --import my_*", "the user's own file or package shown on the page; tests/cli/test_plugins.py runs every form"),
    ("uda evaluate runs/mine --root mydata *", "the user's own dataset folder and run"),
    ("uda predict * /data/cityscapes/leftImg8bit/test *", "the synthetic Cityscapes tree has no test split; "
                                                          "tests/evaluation/test_submission.py uses val images"),
    ("torchrun --nproc-per-node [48] *", "needs 4 or 8 GPUs; the 2-process CPU (gloo) form runs"),
    ("torchrun --nnodes *", "needs several nodes"),
    ("uda evaluate GTA2Cityscapes_multi.pth *", "the original AdaptSegNet release file (a download)"),
    ("uda evaluate gta2cs_daformer_mitb5.pth *", "the original DAFormer release file (a download)"),
    ("uda translate translator.pt *", "a translator file saved with uda.translators.save_translator from Python"),
    ("uda data check --dataset folder --root mydata*", "the user's own folder tree, whose options live in a config"),
    ("python benchmarks/*", "a measurement (minutes); its --smoke mode runs in .ci/run"),
    ("pip install *", "installs packages (.ci/run does it)"),
    ("pytest*", "the test suite this test is part of"),
    ("* ... *", "elided ('...'): only the parts shown are checked"),
]


# --------------------------------------------------------------------------------------------- extraction


@dataclass
class Doc:
    """One documented command."""

    file: str
    line: int
    text: str  # as written, continuation lines joined, comment dropped
    argv: list[str]
    expect: str | None = None  # console blocks: the documented first output line
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: `{self.text}`"

    @property
    def kind(self) -> str:
        a = self.argv
        if a[0] == "uda" or a[:3] == ["python", "-m", "uda"]:
            return "uda"
        if a[0] == "torchrun":
            return "torchrun"
        if a[0] == "python" and len(a) > 1 and a[1].endswith(".py"):
            return "script"
        return a[0]  # pip, pytest

    @property
    def uda_args(self) -> list[str]:
        a = self.argv
        if a[0] == "uda":
            return a[1:]
        i = a.index("-m")
        return a[i + 2:]


_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
_STARTS = ("uda", "python", "torchrun", "pip", "pytest")
_LAUNCHERS = ("srun", "sudo")


def _split(text: str) -> list[list[str]]:
    """Shell words of a line, as commands (``a && b``, ``a ; b``), env assignments and launchers dropped."""
    lex = shlex.shlex(text, posix=True, punctuation_chars="&;|")
    lex.whitespace_split, lex.commenters = True, "#"
    cmds, cur = [], []
    for tok in lex:
        if tok in ("&&", ";", "||", "|", "&"):
            cmds.append(cur)
            cur = []
        else:
            cur.append(tok)
    cmds.append(cur)
    out = []
    for c in cmds:
        while c and (re.match(r"^[A-Za-z_]\w*=", c[0]) or c[0] in _LAUNCHERS):
            c = c[1:]
        if not c or c[0] not in _STARTS:
            continue
        if c[0] == "python" and not (len(c) > 1 and (c[1].endswith(".py") or c[1:3] == ["-m", "uda"])):
            continue  # python -c ..., python -m other
        if c[0] == "torchrun" and not ("-m" in c and c[c.index("-m") + 1: c.index("-m") + 2] == ["uda"]):
            continue
        out.append(c)
    return out


def extract(path: Path, rel: str | None = None) -> list[Doc]:
    """The documented commands of one Markdown file."""
    rel = rel or str(path.relative_to(ROOT))
    docs: list[Doc] = []
    lang, fence = None, None
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line, start = lines[i], i + 1
        m = _FENCE.match(line)
        if m and (fence is None or m.group(1).startswith(fence)):
            lang, fence = (m.group(2).lower(), m.group(1)) if fence is None else (None, None)
            i += 1
            continue
        i += 1
        if fence is None or lang not in LANGS:
            continue
        text = line.strip()
        if lang == "console":
            if not text.startswith("$ "):
                continue
            text = text[2:]
        while text.endswith("\\") and i < len(lines):
            text = text[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        expect = None
        if lang == "console" and i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("$ ") \
                and not _FENCE.match(lines[i]):
            expect = lines[i].strip()
        try:
            cmds = _split(text)
        except ValueError as e:  # an unbalanced quote: a broken command
            docs.append(Doc(rel, start, text, ["?"], problems=[f"cannot be parsed as a shell line ({e})"]))
            continue
        for argv in cmds:
            shown = shlex.join(argv).replace("'...'", "...")
            docs.append(Doc(rel, start, shown, argv, expect if len(cmds) == 1 else None))
    return docs


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def not_run_reason(doc: Doc) -> str | None:
    for pattern, why in NOT_RUN:
        if fnmatch.fnmatchcase(doc.text, pattern):
            return why
    return None


# --------------------------------------------------------------------------------------------- drift


def _leaf(args: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The click command ``uda ARGS`` runs, its path and its remaining args (group options skipped)."""
    cmd: click.Command = main
    path = ["uda"]
    while isinstance(cmd, click.Group):
        while args and args[0].startswith("-") and any(args[0] in p.opts for p in cmd.params):
            args = args[1:]
        if not args or args[0].startswith("-"):
            break
        sub = cmd.get_command(click.Context(cmd), args[0])
        if sub is None:
            raise LookupError(f"`{' '.join(path)}` has no command '{args[0]}' (it has: {', '.join(cmd.list_commands(click.Context(cmd)))})")
        cmd, path, args = sub, [*path, args[0]], args[1:]
    return cmd, path, args


def parse_uda(args: list[str]) -> tuple[click.Command, list[str], dict[str, list[str]], list[str], list[str]]:
    """``(command, path, {option: [values]}, positionals, problems)`` of ``uda ARGS``, without running it."""
    cmd, path, rest = _leaf(args)
    opts = {o: p for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    opts.update({"-h": None, "--help": None})
    values: dict[str, list[str]] = {}
    pos, problems = [], []
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok == "...":
            continue
        if tok.startswith("-") and len(tok) > 1 and not re.match(r"^-\d", tok):
            name, eq, val = tok.partition("=")
            if name not in opts:
                known = ", ".join(sorted(o for o in opts if o.startswith("--")))
                problems.append(f"`{name}` is not an option of `{' '.join(path)}` (its options: {known})")
                continue
            p = opts[name]
            if p is None or p.is_flag or p.count:
                continue
            key = p.opts[0]
            if eq:
                values.setdefault(key, []).append(val)
            else:
                for _ in range(max(p.nargs, 1)):
                    if i < len(rest):
                        values.setdefault(key, []).append(rest[i])
                        i += 1
            while getattr(p, "greedy", False) and i < len(rest) and rest[i].isdigit():  # uda train --seeds 0 1 2
                values[key].append(rest[i])
                i += 1
            continue
        pos.append(tok)
    arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
    if not isinstance(cmd, click.Group) and all(a.nargs >= 0 for a in arguments) \
            and len(pos) > sum(a.nargs for a in arguments):
        problems.append(f"`{' '.join(path)}` takes {sum(a.nargs for a in arguments)} argument(s), got {pos}")
    return cmd, path, values, pos, problems


def drift(doc: Doc) -> list[str]:
    """What no longer matches the code (empty: the command as written still exists)."""
    from uda import registry
    from uda.config import load_config

    problems = list(doc.problems)
    kind, a = doc.kind, doc.argv
    if kind == "torchrun":
        from torch.distributed.run import get_args_parser

        known = get_args_parser()._option_string_actions
        for tok in a[1:a.index("-m")]:
            if tok.startswith("--") and tok.split("=")[0] not in known:
                problems.append(f"`{tok}` is not a torchrun option")
    if kind in ("uda", "torchrun"):
        try:
            _, path, values, pos, probs = parse_uda(doc.uda_args)
        except LookupError as e:
            return [*problems, str(e)]
        problems += probs
        # a config that needs the user's own module (--import my_parts.py) is checked where that module is run
        user_code = any(not (ROOT / i).exists() for i in values.get("--import", []))
        if path[1:] in (["train"], ["config", "show"]) and pos and "..." not in a and doc.expect is None \
                and not user_code:
            try:
                load_config(pos[0], values.get("--set", []))
            except Exception as e:  # a ConfigError names the key
                problems.append(f"config `{pos[0]}` with its --set overrides does not load: {e}")
        for opt in ("--source", "--target"):
            for v in values.get(opt, []):
                name = v.partition(":")[0]
                if name not in registry("dataset").names():
                    problems.append(f"{opt} {v}: '{name}' is not a registered dataset")
    elif kind == "script":
        script = ROOT / a[1]
        if not script.is_file():
            return [*problems, f"{a[1]} does not exist"]
        src = script.read_text(encoding="utf-8")
        for tok in a[2:]:
            name = tok.split("=")[0]
            if name.startswith("--") and f'"{name}"' not in src and f"'{name}'" not in src:
                problems.append(f"`{name}` is not an option of {a[1]}")
    elif kind == "pip":
        extras = _extras()
        for tok in a[2:]:
            for extra in re.findall(r"\[([^\]]*)\]", tok):
                problems += [f"pip extra '{x}' is not in pyproject.toml" for x in extra.split(",") if x not in extras]
    return problems


def _extras() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10: the section's `name = [` lines
        section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
        return set(re.findall(r"^([\w-]+)\s*=", section, flags=re.M))
    return set(tomllib.loads(text)["project"]["optional-dependencies"])


# --------------------------------------------------------------------------------------------- running


def smoke_sets(name: str, sets: list[str], own_data: bool) -> list[str]:
    """Rule 2: the smoke-size ``--set`` values for ``uda train NAME``."""
    from uda.config import load_config

    cfg = load_config(name, sets)
    rec = cfg.recipe
    size = SIZE
    if getattr(rec, "feature_alignment", None) == "multilevel":
        size = "128x64"
    out = ["trainer.max_iters=2", "trainer.checkpoint_every=2", "trainer.eval_every=0", "trainer.log_every=1",
           "trainer.tensorboard=false", "data.batch_size=2"]
    if cfg.model.name.startswith("hrda"):
        size = "64x64"
        out += ["recipe.crop=64x64", "model.options.detail_size=32", "eval.crop=64x64", "eval.stride=32x32"]
    out += [f"data.source.size={size}", f"data.target.size={size}", f"eval.size={size}"]
    if not own_data:
        for sec, n in (("source", 8), ("target", 8), ("val", 2)):
            if getattr(cfg.data, sec).name == "synthetic":
                out.append(f"data.{sec}.options.num={n}")
        out.append(f"data.val.size={size}")
    if cfg.model.name == "deeplabv2_tiny":
        out.append("model.options.width=4")
    if "translator_iters" in rec.__dict__:
        out.append("recipe.translator_iters=2")
    return out


class Session:
    """Synthetic trees, the page directories and the trained-run cache of one test session."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.trees = base / "data"
        self.cache: dict[tuple[str, ...], Path] = {}
        self.image: Path | None = None
        synth = [("GTA5", "source", "gta5", 4), ("SYNTHIA", "source", "synthia", 4),
                 ("cityscapes", "target", "cityscapes", 2), ("acdc", "target", "acdc", 1),
                 ("dark_zurich", "target", "darkzurich", 1), ("bdd100k", "target", "bdd100k", 2),
                 ("mapillary", "target", "mapillary", 2)]
        for folder, domain, layout, num in synth:
            r = CliRunner().invoke(main, ["data", "synth", "--out", str(self.trees / folder), "--domain", domain,
                                          "--layout", layout, "--num", str(num), "--size", SIZE])
            assert r.exit_code == 0, r.output

    def map_path(self, value: str, page: Path) -> str:
        """Rule 1 on one word (also inside ``DATASET:ROOT`` and ``KEY=VALUE``)."""
        if value.startswith("examples/"):  # the repository's example files
            return str(ROOT / value)
        m = re.match(r"^([\w.-]+[:=])?(/.*)$", value)
        if not m:
            return value
        head, p = m.group(1) or "", m.group(2)
        for doc_root, folder in DATA_ROOTS.items():
            if p == doc_root or p.startswith(doc_root + "/"):
                return head + str(self.trees / folder) + p[len(doc_root):]
        return head + str(page / p.lstrip("/"))

    def target_image(self) -> Path:
        return next(iter(sorted((self.trees / "cityscapes").rglob("*leftImg8bit.png"))))

    def train(self, args: list[str], page: Path, out: Path) -> tuple[int, str]:
        """Rule 4: ``uda train ARGS`` into ``out``; an identical earlier training is copied."""
        key = tuple(args)
        if key in self.cache:
            shutil.copytree(self.cache[key], out)
            return 0, ""
        r = CliRunner().invoke(main, [*args, "--out", str(out)])
        if r.exit_code == 0:
            self.cache[key] = out
        return r.exit_code, _why(r)


def _why(r) -> str:
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        import traceback

        return "".join(traceback.format_exception(r.exception)).strip().splitlines()[-1]
    lines = [x for x in (r.stderr or r.output).strip().splitlines() if x.strip()]
    return lines[-1] if lines else "(no output)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe_preset(run_name: str) -> str | None:
    from uda import list_components

    presets = [n for n in list_components("config", "*_synthetic")]
    fits = [n for n in presets if run_name.startswith(n.removesuffix("_synthetic") + "_") or run_name == n]
    return max(fits, key=len) if fits else None


def rewrite_train(sess: Session, args: list[str], page: Path, expect_error: bool) -> list[str]:
    """Rules 1, 2 and 5 on the args of ``uda train``."""
    _, _, values, pos, _ = parse_uda(args)
    own_data = bool(values.get("--source") or values.get("--target"))
    smoke: list[str] = []
    name = pos[0] if pos else None
    if name is not None:
        for s in smoke_sets(name, values.get("--set", []) if not expect_error else [], own_data):
            smoke += ["--set", s]
    args = [sess.map_path(a, page) for a in args]
    args = _cpu(args)
    return [args[0], *smoke, *args[1:], "--device", "cpu"] if expect_error else [*args, *smoke, "--device", "cpu"]


def _cpu(args: list[str]) -> list[str]:
    if torch.cuda.is_available():
        return args
    return ["cpu" if (i and args[i - 1] == "--device" and a.startswith("cuda")) else a for i, a in enumerate(args)]


def run(sess: Session, doc: Doc, page: Path) -> str | None:
    """Run one documented command in ``page``; the reason it failed, or None."""
    kind = doc.kind
    if kind == "script":
        args = [sys.executable, str(ROOT / doc.argv[1]), *[sess.map_path(a, page) for a in doc.argv[2:]],
                *SCRIPT_SMOKE.get(doc.argv[1], [])]
        return _subprocess(args, page, doc)
    args = list(doc.uda_args)
    _, path, values, pos, _ = parse_uda(args)
    sub = path[1:]
    if sub == ["train"]:
        args = rewrite_train(sess, args, page, doc.expect is not None)
    elif sub == ["data", "synth"]:
        args = [sess.map_path(a, page) for a in args]
        args = ["4" if i and args[i - 1] == "--num" and int(a) > 4 else a for i, a in enumerate(args)]
        args += ["--size", SIZE]
    else:
        args = _cpu([sess.map_path(a, page) for a in args])
        if sub and sub[0] not in ("list", "config", "data") and pos:
            given = page / sess.map_path(pos[0], page)
            parts = Path(pos[0]).parts  # a run directory, or a file inside one (runs/X/checkpoints/last.pt)
            run_path = page / Path(*parts[:parts.index("runs") + 2]) if "runs" in parts[:-1] else given
            if not given.exists() and (run_path != given or not Path(pos[0]).suffix):
                preset = _recipe_preset(run_path.name)
                if preset is None:
                    return f"{pos[0]} is not trained on this page and its name names no *_synthetic preset"
                code, why = sess.train(rewrite_train(sess, ["train", preset], page, False), page, run_path)
                if code:
                    return f"training {pos[0]} from {preset} for it failed: {why}"
            for extra in pos[1:]:
                if Path(extra).suffix.lower() in (".png", ".jpg", ".jpeg") and not (page / extra).exists():
                    (page / extra).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(sess.target_image(), page / extra)
    if kind == "torchrun":
        head = doc.argv[1:doc.argv.index("-m")]
        cmd_line = [sys.executable, "-m", "torch.distributed.run", *head, "--master-port", str(_free_port()),
                    "-m", "uda", *args]
        return _subprocess(cmd_line, page, doc)
    if sub == ["train"] and doc.expect is None:
        _, _, values, pos, _ = parse_uda(args)
        if pos:
            from uda.config import load_config

            out = values.get("--out", [None])[-1] or f"runs/{load_config(pos[0], values.get('--set', [])).name}"
            stripped = [a for i, a in enumerate(args) if a != "--out" and (i == 0 or args[i - 1] != "--out")]
            code, why = sess.train(stripped, page, page / out)
            return f"exit {code}: {why}" if code else None
    r = CliRunner().invoke(main, args)
    return _verdict(r.exit_code, r.stderr if r.stderr else r.output, _why(r), doc)


def _verdict(code: int, stderr: str, why: str, doc: Doc) -> str | None:
    if doc.expect is not None and doc.expect.startswith("error:"):
        want = doc.expect.removesuffix("...").strip()
        first = stderr.strip().splitlines()[0] if stderr.strip() else ""
        if code != 2 or not first.startswith(want):
            return f"documented to fail with `{doc.expect}`, got exit {code} and `{first}`"
        return None
    return f"exit {code}: {why}" if code else None


def _subprocess(cmd: list[str], page: Path, doc: Doc) -> str | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=page, env=env, capture_output=True, text=True, timeout=600)
    lines = [x for x in p.stderr.strip().splitlines() if x.strip()]
    return _verdict(p.returncode, p.stderr, lines[-1] if lines else "(no output)", doc)


# --------------------------------------------------------------------------------------------- the tests

FILES = [str(p.relative_to(ROOT)) for p in doc_files()]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return Session(tmp_path_factory.mktemp("documented"))


@pytest.mark.slow
@pytest.mark.parametrize("rel", FILES)
def test_documented_commands_run(rel: str, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each documented command of the page runs (rules in the module docstring), or is listed in NOT_RUN; none
    has drifted from the CLI."""
    page = session.base / "pages" / rel.replace("/", "__")
    page.mkdir(parents=True)
    monkeypatch.chdir(page)
    failures = []
    for doc in extract(ROOT / rel):
        problems = drift(doc)
        if problems:
            failures += [f"{doc.where}: {p}" for p in problems]
            continue
        if not_run_reason(doc) is None:
            try:
                why = run(session, doc, page)
            except Exception as e:  # the failure message names the command
                why = f"{type(e).__name__}: {e}"
            if why:
                failures.append(f"{doc.where}: {why}")
            elif os.environ.get("UDA_DOCS_VERBOSE"):
                print(f"ran {doc.where}; {sorted(p.name for p in page.rglob('final.json'))}")
    assert not failures, "documented commands that fail or drifted:\n" + "\n".join(failures)


def test_every_not_run_pattern_is_used() -> None:
    """The allow-list stays small: each entry matches at least one documented command."""
    docs = [d for p in doc_files() for d in extract(p)]
    unused = [pat for pat, _ in NOT_RUN if not any(fnmatch.fnmatchcase(d.text, pat) for d in docs)]
    assert not unused, f"NOT_RUN patterns that match no documented command any more; remove them: {unused}"
    assert sum(1 for d in docs if d.kind in ("uda", "torchrun")) > 40


def test_extract_joins_splits_and_reads_console_output(tmp_path: Path) -> None:
    md = tmp_path / "page.md"
    md.write_text("text `uda list` inline is not a command\n"
                  "```bash\n"
                  "pip install -e . && uda train mlfa_synthetic   # comment\n"
                  "uda train x --source gta5:/data/GTA5 \\\n"
                  "    --set a=1\n"
                  "ls -l\n"
                  "```\n"
                  "```python\nuda.train()\n```\n"
                  "```console\n$ uda config show advent_synthetic --set recipe.fru=false\nerror: unknown ...\n```\n")
    docs = extract(md, "page.md")
    assert [(d.line, d.argv) for d in docs] == [
        (3, ["pip", "install", "-e", "."]), (3, ["uda", "train", "mlfa_synthetic"]),
        (4, ["uda", "train", "x", "--source", "gta5:/data/GTA5", "--set", "a=1"]),
        (12, ["uda", "config", "show", "advent_synthetic", "--set", "recipe.fru=false"])]
    assert [d.expect for d in docs] == [None, None, None, "error: unknown ..."]


def test_drift_names_the_file_line_and_option(tmp_path: Path) -> None:
    md = tmp_path / "page.md"
    md.write_text("```bash\nuda train mlfa_synthetic --iters 3\nuda trian x\n"
                  "uda train mlfa_synthetic --set trainer.max_iter=2\npip install -e '.[nosuch]'\n"
                  "python examples/custom_recipe.py --steps 3\nuda evaluate runs/x --model m --json\n```\n")
    docs = extract(md, "docs/page.md")
    found = {d.line: drift(d) for d in docs}
    assert "`--iters` is not an option of `uda train`" in found[2][0]
    assert "has no command 'trian'" in found[3][0]
    assert "trainer.max_iter" in found[4][0] and "max_iters" in found[4][0]
    assert found[5] == ["pip extra 'nosuch' is not in pyproject.toml"]
    assert found[6] == ["`--steps` is not an option of examples/custom_recipe.py"]
    assert found[7] == []
    assert docs[0].where == "docs/page.md:2: `uda train mlfa_synthetic --iters 3`"


def test_smoke_sets_shrink_a_training() -> None:
    from uda.config import load_config

    sets = smoke_sets("mlfa_synthetic", [], own_data=False)
    cfg = load_config("mlfa_synthetic", sets)
    assert (cfg.trainer.max_iters, cfg.recipe.translator_iters, cfg.data.source.options["num"]) == (2, 2, 8)
    assert cfg.data.source.size == "128x64" and cfg.model.options["width"] == 4  # multi-level feature alignment
    assert load_config("source_only_synthetic", smoke_sets("source_only_synthetic", [], False)).data.source.size == SIZE
