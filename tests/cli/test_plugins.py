"""User code from the command line: ``--import FILE.py|MODULE`` on every command that resolves a config, the run's
recorded ``imports`` (resume, evaluate, predict in a fresh process), ``torchrun -m uda train --import``, installed
plugins (entry points of the group ``uda.plugins``) and the one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

import uda
import uda.plugins as plugins
from uda._io import save_checkpoint
from uda.cli import main

from .conftest import TINY as TREE_TINY

ROOT = Path(__file__).resolve().parents[2]
SIZE = "32x16"
SETS = [f"data.source.size={SIZE}", f"data.target.size={SIZE}", f"data.val.size={SIZE}", f"eval.size={SIZE}",
        "data.source.options.num=4", "data.target.options.num=4", "data.val.options.num=2", "data.batch_size=1",
        "trainer.log_every=1", "trainer.tensorboard=false", "trainer.eval_every=0", "trainer.max_iters=2",
        "trainer.checkpoint_every=2", "trainer.dist_timeout_s=30"]
TINY = [a for s in SETS for a in ("--set", s)] + ["--device", "cpu"]

# A user's module: an aligner (a loss term), a recipe with its own Config that uses it, a preset of it and a
# translator.
# `{p}` makes the registered names unique per file (the registry of this test process is shared).
USER_FILE = '''
from dataclasses import dataclass

import torch

import uda
from uda.alignment import Aligner
from uda.config import get_builtin, register_config
from uda.losses import _functional as Fn
from uda.recipes import Recipe, TermsConfig
from uda.translators import Translator


@uda.register("aligner", "{p}_entropy")
class UserEntropy(Aligner):
    """weight x mean normalised entropy of the target logits."""

    def __init__(self, *, feature_info=None, num_classes=None, weight=0.5):
        super().__init__()
        self.weight = weight

    def generator_loss(self, source, target, **kw):
        return {{"{p}_ent": self.weight * Fn.minent(target.logits)}}

    def discriminator_loss(self, source, target, **kw):
        return {{}}

    def frozen_in_generator_phase(self):
        return []


@dataclass
class UserConfig(TermsConfig):
    name: str = "{p}_recipe"
    weight: float = 0.5


@uda.register("recipe", "{p}_recipe")
class UserRecipe(Recipe):
    """Source loss + the user's entropy term."""

    Config = UserConfig

    def __init__(self, cfg, model, **kw):
        super().__init__(cfg, model, **kw)
        self.add_term("aligner", self.build_term("{p}_entropy", weight=cfg.weight))


@uda.register("translator", "{p}_dim")
class Dim(Translator):
    """Scales the source images by a factor (a user translator with state)."""

    spec_name = "{p}_dim"

    def __init__(self, factor=0.5):
        super().__init__()
        self.register_buffer("factor", torch.tensor(float(factor)))
        self.spec_kwargs = {{"factor": factor}}

    def forward(self, source, target=None):
        return source * self.factor


@register_config("{p}_synthetic")
def _preset():
    cfg = get_builtin("minent_synthetic")
    cfg.name, cfg.recipe = "{p}_synthetic", UserConfig(weight=0.25)
    return cfg
'''


def write_user_file(folder: Path, prefix: str, name: str = "my_parts.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(USER_FILE.format(p=prefix)))
    return path


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def losses(run: Path) -> list[dict]:
    """The loss rows of metrics.jsonl: ``{"iter": N, **losses}``."""
    rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [{"iter": r["iter"], **r["loss"]} for r in rows if "loss" in r]


def env() -> dict[str, str]:
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    e.pop("UDA_DEBUG", None)
    return e


def uda_proc(*args, limit: float = 180, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    """``python -m uda ARGS`` (or under ``launcher``) in a fresh process, in its own session, bounded by ``limit``."""
    cmd = [sys.executable, *(launcher or []), "-m", "uda", *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env(),
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def user_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_user_file(tmp_path_factory.mktemp("user"), "cliu")


def test_train_resume_evaluate_predict_with_an_imported_file(user_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(user_file.parent)  # a relative path is recorded as the absolute one
    run = tmp_path / "run"
    r = invoke("train", "--import", user_file.name, "cliu_synthetic", "--out", run, *TINY)
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["imports"] == [str(user_file.resolve())] and cfg["recipe"] == {"name": "cliu_recipe", "terms": {},
                                                                              "weight": 0.25}
    rows = losses(run)
    assert [r["iter"] for r in rows] == [1, 2]
    assert all(r["cliu_ent"] > 0 for r in rows)  # the user's term is trained, under its own name
    # --resume and evaluate find the recorded import (the command line names none)
    r = invoke("train", "--resume", "--out", run, "--set", "trainer.max_iters=3")
    assert r.exit_code == 0, r.output
    assert [r["iter"] for r in losses(run)] == [1, 2, 3]
    r = invoke("evaluate", run, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["miou"] == json.loads((run / "final.json").read_text())["miou"]
    img = _an_image(tmp_path)
    r = invoke("predict", run, img, "--out", tmp_path / "preds", "--save", "trainid")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "preds").rglob("*.png"))) == 1


def _an_image(folder: Path) -> Path:
    path = folder / "street.png"
    Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(path)
    return path


def test_list_and_config_show_take_import_and_a_yaml_imports_relative_to_it(tmp_path: Path) -> None:
    user = write_user_file(tmp_path / "parts", "cfgu")
    r = invoke("list", "recipe", "cfgu_*", "--json", "--import", user)
    assert r.exit_code == 0 and json.loads(r.stdout) == ["cfgu_recipe"]
    (tmp_path / "exp.yaml").write_text("imports: [parts/my_parts.py]\n_base_: cfgu_synthetic\nrecipe: {weight: 2.0}\n")
    r = invoke("config", "show", tmp_path / "exp.yaml")
    assert r.exit_code == 0, r.output
    shown = yaml.safe_load(r.stdout)
    assert shown["imports"] == [str(user.resolve())] and shown["recipe"]["weight"] == 2.0


def test_a_yaml_naming_a_missing_import_is_one_line_naming_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("imports: [gone.py]\n_base_: minent_synthetic\n")
    r = CliRunner().invoke(main, ["config", "show", str(tmp_path / "exp.yaml")])
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'exp.yaml'}: imports: {tmp_path / 'gone.py'}: no such file; fix the path in that file "
        "(relative paths start from its folder)"]
    (tmp_path / "bad.yaml").write_text("imports: terms.py\n")
    r = CliRunner().invoke(main, ["config", "show", str(tmp_path / "bad.yaml")])
    assert r.exit_code == 2 and r.stderr.strip() == (
        f"error: {tmp_path / 'bad.yaml'}: imports: must be a list of .py paths or dotted module names, got 'terms.py'")


def test_a_dotted_module_name(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "site" / "userpkg"
    write_user_file(pkg, "modu", "parts.py")
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    r = invoke("config", "show", "modu_synthetic", "--import", "userpkg.parts")
    assert r.exit_code == 0, r.output
    assert yaml.safe_load(r.stdout)["imports"] == ["userpkg.parts"]


@pytest.mark.slow
def test_a_fresh_process_trains_then_evaluates_from_the_recorded_import_and_a_moved_file(tmp_path: Path) -> None:
    user = write_user_file(tmp_path / "a", "procu")
    run = tmp_path / "run"
    p = uda_proc("train", "--import", user, "minent_synthetic", "--set", "recipe.name=procu_recipe", "--out", run,
                 *TINY)
    assert p.returncode == 0, p.stderr[-3000:]
    assert all(r["procu_ent"] > 0 for r in losses(run))
    p = uda_proc("evaluate", run, "--json")  # a new process: only the run's record names the file
    assert p.returncode == 0, p.stderr[-3000:]
    miou = json.loads(p.stdout)["miou"]
    moved = tmp_path / "b" / "my_parts.py"
    moved.parent.mkdir()
    shutil.move(user, moved)
    p = uda_proc("evaluate", run, "--json")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        f"error: imports: {user}: no such file; restore it, or give its new place with --set 'imports=[NEW.py]'"]
    p = uda_proc("evaluate", run, "--json", "--set", f"imports=[{moved}]")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout)["miou"] == miou


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_train_an_imported_recipe(tmp_path: Path) -> None:
    user = write_user_file(tmp_path / "u", "ddpu")
    run = tmp_path / "run"
    p = uda_proc("train", "--import", user, "ddpu_synthetic", "--out", run, *TINY, limit=240,
                 launcher=["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"])
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    rows = losses(run)
    assert [r["iter"] for r in rows] == [1, 2] and all(r["ddpu_ent"] > 0 for r in rows)
    assert yaml.safe_load((run / "config.yaml").read_text())["imports"] == [str(user)]
    assert (run / "final.json").is_file()


@pytest.mark.slow
def test_translate_in_a_fresh_process_rebuilds_the_runs_user_translator(trees: dict[str, Path], tmp_path: Path) -> None:
    """An FDA-style run whose translator the user's file registers: `uda translate RUN` in a new process imports the
    file from the run's record and writes the images through that translator (half brightness)."""
    user = write_user_file(tmp_path / "u", "tru")
    plugins.import_module(str(user))
    weights = tmp_path / "dim.pt"  # a translator that is not trained in the run comes with its weights
    save_checkpoint(uda.create("translator", "tru_dim", factor=0.5).state_dict(), weights)  # a state dict
    run = tmp_path / "run"
    r = invoke("train", "fda_synthetic", "--import", user, "--source", f"gta5:{trees['gta5']}",
               "--target", f"cityscapes:{trees['cityscapes']}", "--out", run, "--set", "recipe.translator=tru_dim",
               "--set", "recipe.translator_options={factor: 0.5}", "--set", f"recipe.translator_checkpoint={weights}",
               *TREE_TINY)
    assert r.exit_code == 0, r.output
    out = tmp_path / "translated"
    p = uda_proc("translate", run, "--out", out, "--device", "cpu")
    assert p.returncode == 0, p.stderr[-3000:]
    files = sorted(out.rglob("*.png"))
    assert [f.name for f in files] == sorted(f.name for f in (trees["gta5"] / "images").glob("*.png"))
    for f in files:
        orig = np.asarray(Image.open(trees["gta5"] / "images" / f.name).convert("RGB").resize((64, 32)), np.float32)
        got = np.asarray(Image.open(f).convert("RGB"), np.float32)
        assert got.max() <= 128 and np.abs(got - orig / 2).mean() < 2.0  # the user's translator, not a copy


# --------------------------------------------------------------------------------------------- entry points


def fake_distribution(site: Path, entry: str, module: str = "", name: str = "uda_fake_plugin") -> None:
    """An installed distribution as importlib.metadata finds it: ``<name>-0.1.dist-info`` on sys.path."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[uda.plugins]\n{entry}\n")
    if module:
        (site / f"{name}.py").write_text(module)


@pytest.fixture
def fresh_plugins(monkeypatch):
    monkeypatch.setattr(plugins, "_PLUGINS_LOADED", None)
    monkeypatch.delenv("UDA_NO_PLUGINS", raising=False)
    yield
    plugins._PLUGINS_LOADED = None


def test_an_installed_plugin_is_loaded_once_at_cli_start(tmp_path: Path, monkeypatch, fresh_plugins) -> None:
    module = textwrap.dedent('''
        import uda
        CALLS = []

        def setup():
            CALLS.append(1)

            @uda.register("loss", "plugin_made_loss")
            def made():
                """A loss from an installed plugin."""
                return 0
    ''')
    fake_distribution(tmp_path, "fake = uda_fake_plugin:setup", module)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "plugin_made_loss" not in uda.list_components("loss")
    for _ in range(2):
        r = invoke("list", "loss", "plugin_*", "--json")
        assert r.exit_code == 0 and json.loads(r.stdout) == ["plugin_made_loss"]
    assert sys.modules["uda_fake_plugin"].CALLS == [1]  # once per process
    assert plugins.load_plugins() == ["fake"]


def test_a_broken_plugin_is_one_line_naming_it(tmp_path: Path, monkeypatch, fresh_plugins) -> None:
    fake_distribution(tmp_path, "broken = uda_broken_plugin", "import no_such_module_here\n", name="uda_broken_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = CliRunner().invoke(main, ["list", "recipe"])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "error: plugin 'broken' (uda.plugins entry point 'uda_broken_plugin' from uda_broken_plugin 0.1) failed to "
        "load: ModuleNotFoundError: No module named 'no_such_module_here'; fix or uninstall it, or set "
        "UDA_NO_PLUGINS=1 to run without plugins"]
    monkeypatch.setattr(plugins, "_PLUGINS_LOADED", None)
    monkeypatch.setenv("UDA_NO_PLUGINS", "1")
    assert CliRunner().invoke(main, ["list", "recipe", "minent"]).exit_code == 0


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("spec, message", [
    ("{tmp}/nothere.py", "error: --import {tmp}/nothere.py: no such file; check the path"),
    ("no_such_user_module", "error: --import no_such_user_module: no module of that name on sys.path; install it, "
                            "add its folder to PYTHONPATH or pass the path of its .py file"),
    ("{tmp}/boom.py", "error: --import {tmp}/boom.py: importing it failed: RuntimeError: boom"),
    ("{tmp}/notes.txt", "error: --import {tmp}/notes.txt: not a .py file; pass a Python file or a dotted module name"),
])
def test_bad_imports_are_one_line_and_exit_2(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "boom.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "notes.txt").write_text("x")
    spec, message = spec.format(tmp=tmp_path), message.format(tmp=tmp_path)
    for cmd in (["train", "minent_synthetic", "--out", tmp_path / "run"], ["evaluate", tmp_path],
                ["predict", tmp_path, tmp_path, "--out", tmp_path / "p"], ["translate", tmp_path, "--out", tmp_path / "t"],
                ["config", "show", "minent_synthetic"], ["list", "recipe"],
                ["data", "check", "--dataset", "gta5", "--root", tmp_path]):
        r = CliRunner().invoke(main, [*map(str, cmd), "--import", spec])
        assert r.exit_code == 2 and r.stderr.strip().splitlines() == [message], (cmd, r.stderr)
    assert not any((tmp_path / d).exists() for d in ("run", "p", "t"))
    assert "uda_user_boom" not in sys.modules  # a failed import leaves no half module behind
