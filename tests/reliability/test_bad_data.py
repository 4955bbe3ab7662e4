"""Bad data met during training and by ``uda data check``: a truncated image, a label with an unknown value and a
missing label in a GTA5-layout tree written by :func:`uda.data.write_synthetic`, and an empty split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uda.data import write_synthetic
from uda.data._write import write_palettized

from .conftest import SIZE, invoke, logged, one_line_error

NUM = 6


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clean")
    write_synthetic(root / "GTA5", domain="source", layout="gta5", num=NUM, size=(32, 16), seed=0)
    write_synthetic(root / "cityscapes", domain="target", layout="cityscapes", num=2, size=(32, 16), seed=1)
    return {"gta5": root / "GTA5", "cityscapes": root / "cityscapes"}


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "images").iterdir())


def _inject(root: Path, fault: str) -> Path:
    """Apply one fault to a GTA5 tree; return the file it concerns."""
    names = _files(root)
    if fault == "truncated":
        path = root / "images" / names[1]
        path.write_bytes(path.read_bytes()[:60])
    elif fault == "unknown_value":
        path = root / "labels" / names[2]
        ids = np.array(Image.open(path))
        ids[0, 0] = 34  # 34 is not a Cityscapes label id (0..33, -1)
        write_palettized(path, ids)
    else:
        path = root / "labels" / names[3]
        path.unlink()
    return path


FAULTS = ("truncated", "unknown_value", "missing_label")


@pytest.fixture
def faulty(clean, tmp_path) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "GTA5"
    shutil.copytree(clean["gta5"], root)
    return root, {f: _inject(root, f) for f in FAULTS}


def _train(source: Path, target: Path, out: Path, *over: str):
    sets = [f"data.source.size={SIZE}", f"data.target.size={SIZE}", f"data.val.size={SIZE}", f"eval.size={SIZE}",
            "data.batch_size=2", "model.options.width=4", "trainer.max_iters=4", "trainer.checkpoint_every=2",
            "trainer.log_every=1", "trainer.tensorboard=false", "trainer.eval_every=0", *over]
    return invoke("train", "source_only_synthetic", "--source", f"gta5:{source}", "--target", f"cityscapes:{target}",
                  "--out", out, "--device", "cpu", *[a for o in sets for a in ("--set", o)])


@pytest.mark.parametrize("fault", FAULTS)
def test_stop_mode_ends_with_one_line_naming_the_file(fault, clean, tmp_path):
    root = tmp_path / "GTA5"
    shutil.copytree(clean["gta5"], root)
    bad = _inject(root, fault)
    r = _train(root, clean["cityscapes"], tmp_path / "run", "data.on_bad_sample=stop")
    assert r.exit_code == 2, r.stderr[-1500:]
    line = one_line_error(r)
    assert str(bad) in line, line
    assert not (tmp_path / "run" / "final.json").exists()


def test_skip_mode_completes_and_warns_naming_each_file(faulty, clean, tmp_path, recwarn):
    root, bad = faulty
    r = _train(root, clean["cityscapes"], tmp_path / "run", "data.on_bad_sample=skip")
    assert r.exit_code == 0, r.stderr[-1500:]
    warned = " ".join(str(w.message) for w in recwarn)
    for fault, path in bad.items():
        assert str(path) in warned, fault
    assert [x["global_iter"] for x in logged(tmp_path / "run") if "loss" in x] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "run" / "final.json").read_text())["num_images"] == 2


def test_data_check_finds_every_fault_by_file(faulty):
    root, bad = faulty
    r = invoke("data", "check", "--dataset", "gta5", "--root", root, "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["num_samples"] == NUM - 1  # the image without a label is not a sample
    problems = report["problems"]
    assert len(problems) == 3
    assert any(p.startswith(str(root / "images" / bad["missing_label"].name)) and "no label" in p for p in problems)
    assert any(p.startswith(str(bad["truncated"])) for p in problems)
    assert any(p.startswith(str(bad["unknown_value"])) and "34" in p for p in problems)


def test_empty_split_exits_2_naming_the_folder(tmp_path):
    root = tmp_path / "cityscapes"
    for sub in ("leftImg8bit/train", "gtFine/train", "leftImg8bit/val", "gtFine/val"):
        (root / sub).mkdir(parents=True)
    r = invoke("data", "check", "--dataset", "cityscapes", "--root", root, "--split", "train")
    assert r.exit_code == 2
    assert str(root / "leftImg8bit" / "train") in one_line_error(r)
    src = tmp_path / "GTA5"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    r = _train(src, root, tmp_path / "run")
    assert r.exit_code == 2
    assert str(src) in one_line_error(r)


def test_stop_mode_in_a_dataloader_worker_still_names_the_file_in_one_line(clean, tmp_path):
    root = tmp_path / "GTA5"
    shutil.copytree(clean["gta5"], root)
    bad = _inject(root, "truncated")
    r = _train(root, clean["cityscapes"], tmp_path / "run", "data.on_bad_sample=stop", "data.num_workers=1")
    assert r.exit_code == 2, r.stderr[-1500:]
    line = one_line_error(r)
    assert str(bad) in line and "Traceback" not in line and "worker process" not in line, line
