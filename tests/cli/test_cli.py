"""The ``uda`` command line, in-process with click's CliRunner and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

import uda
from uda.config import load_config

from .conftest import SIZE, TINY, invoke


def _one_line_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


# ----------------------------------------------------------------------------------------- top level


def test_version() -> None:
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"uda {uda.__version__}"


@pytest.mark.parametrize(
    "command",
    [[], ["list"], ["config", "show"], ["train"], ["translate"], ["evaluate"], ["predict"], ["export"],
     ["data", "check"], ["data", "synth"]],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    r = invoke(*command, "--help")
    assert r.exit_code == 0, r.output
    assert "Usage: " in r.stdout
    assert "uda " in r.stdout.split("Options:")[0].split("Usage:")[1]  # an example command line


def test_bare_group_shows_help() -> None:
    r = invoke("data")
    assert r.exit_code == 0 and "synth" in r.stdout and "check" in r.stdout


# ----------------------------------------------------------------------------------------- list / config


def test_list_json() -> None:
    r = invoke("list", "recipe", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == uda.list_components("recipe")
    assert {"mlfa", "advent", "source_only"} <= set(json.loads(r.stdout))
    everything = json.loads(invoke("list", "--json").stdout)
    assert everything == uda.list_components() and "recipe/mlfa" in everything
    assert json.loads(invoke("list", "config", "mlfa_*", "--json").stdout) == uda.list_components("config", "mlfa_*")
    # a pattern in place of KIND searches every kind
    assert json.loads(invoke("list", "*_tiny", "--json").stdout) == uda.list_components(None, "*_tiny")


def test_list_plain_shows_descriptions() -> None:
    r = invoke("list", "discriminator")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("discriminator (")
    fc = next(line for line in lines if line.split()[0] == "fc")
    assert uda.registry("discriminator").describe("fc") in fc


def test_config_show_with_overrides() -> None:
    r = invoke("config", "show", "mlfa_synthetic", "--set", "trainer.max_iters=3", "--set", "model.pretrained=null",
               "--set", "optim.generator.lr=1e-3")
    assert r.exit_code == 0, r.output
    shown = yaml.safe_load(r.stdout)
    assert shown["trainer"]["max_iters"] == 3 and shown["optim"]["generator"]["lr"] == pytest.approx(1e-3)
    assert shown == load_config("mlfa_synthetic", ["trainer.max_iters=3", "optim.generator.lr=1e-3"]).to_dict()


def test_config_show_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("_base_: advent_synthetic\nname: mine\ntrainer:\n  max_iters: 5\n")
    shown = yaml.safe_load(invoke("config", "show", path).stdout)
    assert shown["name"] == "mine" and shown["trainer"]["max_iters"] == 5 and shown["recipe"]["name"] == "advent"


# ----------------------------------------------------------------------------------------- user errors


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["config", "show", "mlfa_synthtic"], "Did you mean 'mlfa_synthetic'?"),
        (["train", "advent_synthetc"], "Did you mean 'advent_synthetic'?"),
        (["config", "show", "mlfa_synthetic", "--set", "trainer.max_iter=3"], "Did you mean 'trainer.max_iters'?"),
        (["config", "show", "mlfa_synthetic", "--set", "trainer.max_iters"], "is not KEY=VALUE"),
        (["config", "show", "mlfa_synthetic", "--set", "trainer.max_iters=lots"], "expected an integer"),
        (["list", "modl"], "Did you mean 'model'?"),
        (["train", "mlfa_synthetic", "--source", "gta5"], "is not DATASET:ROOT"),
        (["train", "mlfa_synthetic", "--source", "gta55:/tmp"], "Did you mean 'gta5'?"),
        (["train", "mlfa_synthetic", "--target", "cityscapes:/no/such/folder"], "does not exist"),
        (["train", "mlfa_synthetic", "--device", "gpu"], "use auto, cpu, cuda or cuda:N"),
        (["train", "mlfa_synthetic", "--resume", "--out", "/no/such/run"], "no checkpoints in"),
        (["train", "mlfa_synthetic", "--sett", "x=1"], "No such option"),
        (["data", "check", "--dataset", "gta5", "--root", "/no/such/folder"], "does not exist"),
        (["data", "check", "--dataset", "gta55", "--root", "."], "Did you mean 'gta5'?"),
        (["data", "synth", "--out", "x", "--domain", "source", "--layout", "kitti", "--num", "1"], "'kitti' is not one of"),
        (["evaluate", "--dataset", "cityscapes", "--root", "."], "give either CHECKPOINT or --predictions"),
        (["evaluate", "/no/such.pt", "--dataset", "cityscapes", "--root", "."], "does not exist"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    err = _one_line_error(invoke(*args))
    assert expected in err


def test_unknown_model_name_in_config_suggests_closest(run_dir: Path, trees: dict[str, Path]) -> None:
    r = invoke("evaluate", run_dir, "--dataset", "cityscapes", "--root", trees["cityscapes"],
               "--set", "model.name=deeplabv2_tiyn")
    assert "Did you mean 'deeplabv2_tiny'?" in _one_line_error(r)


def test_debug_shows_the_traceback() -> None:
    r = invoke("--debug", "config", "show", "mlfa_synthtic")
    assert r.exit_code == 2
    assert "Traceback (most recent call last)" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: unknown config 'mlfa_synthtic'")


# ----------------------------------------------------------------------------------------- data


def test_data_synth_and_check(trees: dict[str, Path]) -> None:
    assert len(list((trees["gta5"] / "labels").glob("*.png"))) == 4
    assert Image.open(next((trees["gta5"] / "labels").glob("*.png"))).mode == "P"  # palettized like GTA5
    r = invoke("data", "check", "--dataset", "gta5", "--root", trees["gta5"], "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["dataset"] == "gta5" and report["num_samples"] == 4 and report["problems"] == []
    assert sum(report["class_pixels"].values()) + report["ignored_pixels"] == 4 * 64 * 32
    plain = invoke("data", "check", "--dataset", "cityscapes", "--root", trees["cityscapes"], "--split", "val")
    assert plain.exit_code == 0 and "no problems found" in plain.stdout and "road" in plain.stdout


def test_data_check_exits_1_on_problems(tmp_path: Path) -> None:
    root = tmp_path / "GTA5"
    assert invoke("data", "synth", "--out", root, "--domain", "source", "--layout", "gta5", "--num", "3",
                  "--size", "32x16").exit_code == 0
    broken = sorted((root / "labels").glob("*.png"))[1]
    broken.write_bytes(b"not a png")
    r = invoke("data", "check", "--dataset", "gta5", "--root", root, "--json")
    assert r.exit_code == 1
    problems = json.loads(r.stdout)["problems"]
    assert len(problems) == 1 and broken.name in problems[0]
    plain = invoke("data", "check", "--dataset", "gta5", "--root", root)
    assert plain.exit_code == 1 and broken.name in plain.stderr and "1 problem(s)" in plain.stderr


# ----------------------------------------------------------------------------------------- train / evaluate / predict


def test_train_writes_the_run_and_prints_the_table(run_dir: Path, trees: dict[str, Path]) -> None:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["trainer"]["seed"] == 3 and cfg["trainer"]["device"] == "cpu" and cfg["trainer"]["max_iters"] == 2
    assert cfg["data"]["source"] == {"name": "gta5", "root": str(trees["gta5"]), "split": "train", "size": SIZE,
                                     "options": {}}
    assert cfg["data"]["target"]["name"] == "cityscapes" and cfg["data"]["target"]["split"] == "train"
    assert cfg["data"]["val"]["name"] == "cityscapes" and cfg["data"]["val"]["split"] == "val"
    assert cfg["data"]["val"]["size"] is None  # scored at the native label size
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    final = json.loads((run_dir / "final.json").read_text())
    assert final["num_images"] == 2 and 0.0 <= final["miou"] <= 100.0
    assert (run_dir / "command.txt").is_file()
    assert [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_train_resume_with_more_iterations(run_dir: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(run_dir, run)
    r = invoke("train", "source_only_synthetic", "--source", f"gta5:{trees['gta5']}",
               "--target", f"cityscapes:{trees['cityscapes']}", "--out", run, "--seed", "3", *TINY,
               "--set", "trainer.max_iters=3", "--resume")
    assert r.exit_code == 0, r.output
    assert "mIoU" in r.stdout and "road" in r.stdout
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(s.get("global_iter", 0) for s in steps) == 3


def test_evaluate_checkpoint_json_and_report(run_dir: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    r = invoke("evaluate", run_dir, "--dataset", "cityscapes", "--root", trees["cityscapes"], "--json",
               "--device", "cpu", "--report", tmp_path / "report")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["num_images"] == 2
    assert list(result["per_class"]) == list(uda.labels.CITYSCAPES_CLASSES)
    final = json.loads((run_dir / "final.json").read_text())
    assert result["miou"] == pytest.approx(final["miou"], abs=1e-6)  # same model, same data, same protocol
    assert (tmp_path / "report" / "table.md").is_file()
    table = invoke("evaluate", run_dir / "checkpoints" / "last.pt", "--dataset", "cityscapes", "--root",
                   trees["cityscapes"], "--device", "cpu")
    assert table.exit_code == 0 and "road" in table.stdout and "mIoU" in table.stdout


def test_predict_then_evaluate_predictions(run_dir: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    images = trees["cityscapes"] / "leftImg8bit" / "val"
    out = tmp_path / "preds"
    r = invoke("predict", run_dir, images, "--out", out, "--save", "trainid,color,overlay,labelid", "--device", "cpu")
    assert r.exit_code == 0, r.output
    for kind in ("trainid", "color", "overlay", "labelid"):
        assert len(list((out / kind).rglob("*.png"))) == 2, kind
    one = Image.open(next((out / "trainid").rglob("*.png")))
    assert one.size == (64, 32) and one.mode in ("L", "P")
    bad = invoke("predict", run_dir, images, "--out", out, "--save", "trainid,jpeg")
    assert "unknown output(s) jpeg" in _one_line_error(bad)

    r = invoke("evaluate", "--predictions", out, "--dataset", "cityscapes", "--root", trees["cityscapes"], "--json")
    assert r.exit_code == 0, r.output
    from_preds = json.loads(r.stdout)
    final = json.loads((run_dir / "final.json").read_text())
    assert from_preds["num_images"] == 2
    assert from_preds["miou"] == pytest.approx(final["miou"], abs=0.06)  # same predictions (rounding may differ)


def test_translate_with_a_saved_translator(trees: dict[str, Path], tmp_path: Path) -> None:
    from uda.translators import save_translator

    ckpt = tmp_path / "translator.pt"
    save_translator(uda.create("translator", "cyclegan_tiny"), ckpt)
    out = tmp_path / "translated"
    r = invoke("translate", ckpt, "--dataset", "gta5", "--root", trees["gta5"], "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    written = sorted(p.name for p in out.rglob("*.png"))
    assert written == sorted(p.name for p in (trees["gta5"] / "images").glob("*.png"))
    assert Image.open(next(out.rglob("*.png"))).size == (64, 32)
    cached = uda.create("dataset", "gta5", root=trees["gta5"], images_root=out)  # reads back as the source
    assert len(cached) == 4 and cached[0]["image"].shape == (3, 32, 64)
    (tmp_path / "empty").mkdir()
    err = _one_line_error(invoke("translate", tmp_path / "empty", "--dataset", "gta5", "--root", trees["gta5"], "--out", out))
    assert "no translator checkpoint" in err


# ----------------------------------------------------------------------------------------- real processes


def _uda_executable() -> str:
    exe = Path(sys.executable).parent / "uda"
    assert exe.is_file(), "the `uda` console script is not installed next to this Python (pip install -e .)"
    return str(exe)


def test_installed_uda_command_runs() -> None:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    v = subprocess.run([_uda_executable(), "--version"], capture_output=True, text=True, env=env, timeout=300)
    assert v.returncode == 0 and v.stdout.strip() == f"uda {uda.__version__}"
    lst = subprocess.run([_uda_executable(), "list", "recipe", "--json"], capture_output=True, text=True, env=env,
                         timeout=300)
    shipped = [r for r in uda.list_components("recipe") if uda.registry("recipe").get(r).__module__.startswith("uda.")]
    assert lst.returncode == 0 and json.loads(lst.stdout) == shipped  # tests register recipes of their own
    err = subprocess.run([_uda_executable(), "config", "show", "nope_config"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert err.returncode == 2 and err.stderr.strip().startswith("error: unknown config 'nope_config'")
    assert len(err.stderr.strip().splitlines()) == 1


def test_python_dash_m_uda() -> None:
    r = subprocess.run([sys.executable, "-m", "uda", "--help"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("Usage: uda ")
