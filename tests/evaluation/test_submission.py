"""`uda predict RUN INPUT... --submission acdc|darkzurich|cityscapes`: the servers' file names, label encodings
and zip layouts, checked on test-split trees written by `uda data synth` and a run made by `uda train`."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from uda.cli import main
from uda.evaluation.submission import SUBMISSION_FORMATS
from uda.labels import CITYSCAPES_ID_TO_TRAINID, trainid_to_labelid_lut

SIZE = "64x32"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("submission")
    out = {k: root / k for k in ("gta5", "cityscapes", "acdc", "darkzurich")}
    assert invoke("data", "synth", "--out", out["gta5"], "--domain", "source", "--layout", "gta5", "--num", "4",
                  "--size", SIZE).exit_code == 0
    assert invoke("data", "synth", "--out", out["cityscapes"], "--domain", "target", "--layout", "cityscapes",
                  "--num", "2", "--size", SIZE, "--seed", "1").exit_code == 0
    # the test splits, as the servers' test sets: ACDC 4 conditions x 1 image (+ its reference), Dark Zurich 2
    r = invoke("data", "synth", "--out", out["acdc"], "--layout", "acdc", "--num", "1", "--size", "48x27",
               "--splits", "test")
    assert r.exit_code == 0, r.output
    r = invoke("data", "synth", "--out", out["darkzurich"], "--layout", "darkzurich", "--num", "2", "--size", "48x27",
               "--splits", "test")
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def run(trees, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    r = invoke("train", "source_only_synthetic", "--source", f"gta5:{trees['gta5']}",
               "--target", f"cityscapes:{trees['cityscapes']}", "--out", out, "--device", "cpu", "--seed", "3",
               "--set", "trainer.max_iters=2", "--set", "trainer.checkpoint_every=2",
               "--set", "trainer.tensorboard=false", "--set", f"data.source.size={SIZE}",
               "--set", f"data.target.size={SIZE}", "--set", f"eval.size={SIZE}", "--set", "data.batch_size=2")
    assert r.exit_code == 0, r.output
    return out


def _images(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def _trainids(run: Path, images: list[Path], out: Path) -> dict[str, np.ndarray]:
    """The plain `uda predict --save trainid` of each image, by file name."""
    r = invoke("predict", run, *images, "--out", out, "--save", "trainid", "--device", "cpu")
    assert r.exit_code == 0, r.output
    return {p.name: np.array(Image.open(p)) for p in (out / "trainid").rglob("*.png")}


def _png(zf: zipfile.ZipFile, member: str) -> Image.Image:
    return Image.open(io.BytesIO(zf.read(member)))


def test_acdc_zip_is_flat_trainid_pngs_named_as_the_images(run, trees, tmp_path):
    test = sorted((trees["acdc"] / "rgb_anon").glob("*/test"))
    assert len(test) == 4  # one test folder per condition (the *_ref folders are not passed)
    r = invoke("predict", run, *test, "--submission", "acdc", "--out", tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "the acdc test split has 2000" in r.output  # a partial submission is reported
    images = [p for t in test for p in _images(t, "*_rgb_anon.png")]
    assert len(images) == 4
    zpath = tmp_path / "out" / "acdc_submission.zip"
    with zipfile.ZipFile(zpath) as zf:
        assert sorted(zf.namelist()) == sorted(p.name for p in images)  # flat: <stem>_rgb_anon.png
        plain = _trainids(run, images, tmp_path / "plain")
        for img in images:
            png = _png(zf, img.name)
            assert png.mode == "L" and png.size == Image.open(img).size  # full resolution, 8-bit
            arr = np.array(png)
            assert arr.max() <= 18 and np.array_equal(arr, plain[img.name])  # trainIds
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["acdc_submission.zip"]  # no temporary file left


def test_darkzurich_zip_has_the_three_folders(run, trees, tmp_path):
    test = trees["darkzurich"] / "rgb_anon" / "test"
    r = invoke("predict", run, test, "--submission", "darkzurich", "--out", tmp_path, "--device", "cpu")
    assert r.exit_code == 0, r.output
    images = _images(test, "*_rgb_anon.png")
    assert len(images) == 2 and all(p.parent.parent.name == "night" for p in images)
    plain = _trainids(run, images, tmp_path / "plain")
    with zipfile.ZipFile(tmp_path / "darkzurich_submission.zip") as zf:
        folders = SUBMISSION_FORMATS["darkzurich"].folders
        assert folders == ("labelTrainIds", "confidence", "labelTrainIds_invalid")
        assert sorted(zf.namelist()) == sorted(f"{f}/{p.name}" for f in folders for p in images)
        for img in images:
            label = np.array(_png(zf, f"labelTrainIds/{img.name}"))
            assert np.array_equal(label, plain[img.name])
            invalid = _png(zf, f"labelTrainIds_invalid/{img.name}")
            assert invalid.mode == "L" and np.array_equal(np.array(invalid), label)  # nothing declared invalid
            conf = _png(zf, f"confidence/{img.name}")
            assert conf.mode.startswith("I") and conf.size == Image.open(img).size
            c = np.array(conf).astype(np.int64)
            # the softmax maximum of 19 classes: at least 1/19 of 65535, at most 65535
            assert c.min() >= 65535 // 19 and c.max() <= 65535


def test_cityscapes_zip_is_labelids(run, trees, tmp_path):
    images = _images(trees["cityscapes"] / "leftImg8bit" / "val", "*_leftImg8bit.png")
    r = invoke("predict", run, trees["cityscapes"] / "leftImg8bit" / "val", "--submission", "cityscapes",
               "--out", tmp_path, "--device", "cpu")
    assert r.exit_code == 0, r.output
    plain = _trainids(run, images, tmp_path / "plain")
    lut = trainid_to_labelid_lut()
    with zipfile.ZipFile(tmp_path / "cityscapes_submission.zip") as zf:
        assert sorted(zf.namelist()) == sorted(p.name for p in images)
        for img in images:
            arr = np.array(_png(zf, img.name))
            assert set(np.unique(arr)) <= set(CITYSCAPES_ID_TO_TRAINID)  # Cityscapes labelIds, not trainIds
            assert np.array_equal(arr, lut[plain[img.name]])


def test_wrong_images_are_refused_in_one_line(run, trees, tmp_path):
    # ACDC's reference images (*_rgb_ref_anon.png) are not test images
    ref = sorted((trees["acdc"] / "rgb_anon").glob("*/test_ref"))
    assert ref
    r = invoke("predict", run, ref[0], "--submission", "acdc", "--out", tmp_path)
    assert r.exit_code == 2 and "is not a acdc test image" in r.output and "Traceback" not in r.output
    r = invoke("predict", run, trees["acdc"] / "rgb_anon" / "fog" / "test", "--submission", "cityscapes",
               "--out", tmp_path)
    assert r.exit_code == 2 and "_leftImg8bit.png" in r.output
    assert not list(tmp_path.glob("*.zip"))  # nothing half-written
