"""`uda evaluate RUN` scores the run's own validation set with its options; --dataset/--root switch it explicitly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import TINY, invoke


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "synthetic"
    r = invoke("train", "source_only_synthetic", "--out", out, *TINY, "--set", "data.val.size=64x32",
               "--set", "data.val.options.num=3", "--set", "data.source.options.num=4",
               "--set", "data.target.options.num=4")
    assert r.exit_code == 0, r.output
    return out


def _json(*args) -> dict:
    r = invoke("evaluate", *args, "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_run_is_scored_on_its_own_validation_set(synthetic_run: Path) -> None:
    final = json.loads((synthetic_run / "final.json").read_text())
    got = _json(synthetic_run)
    assert got["num_images"] == 3 == final["num_images"]
    assert got["miou"] == pytest.approx(final["miou"], abs=1e-6)


def test_same_dataset_elsewhere_keeps_the_run_options(synthetic_run: Path) -> None:
    # before: the options were reset, the synthetic dataset fell back to its source domain and 100 images
    final = json.loads((synthetic_run / "final.json").read_text())
    got = _json(synthetic_run, "--dataset", "synthetic", "--root", ".")
    assert got["num_images"] == 3 and got["miou"] == pytest.approx(final["miou"], abs=1e-6)


def test_another_dataset_needs_its_root(synthetic_run: Path) -> None:
    r = invoke("evaluate", synthetic_run, "--dataset", "cityscapes")
    assert r.exit_code == 2 and "give its --root too" in r.output


def test_bare_weights_need_dataset_and_root(synthetic_run: Path, tmp_path: Path) -> None:
    import uda
    from uda.models import save_weights

    save_weights(uda.load(synthetic_run), tmp_path / "w.pt")  # the run's weights without its config
    r = invoke("evaluate", tmp_path / "w.pt", "--model", "deeplabv2_tiny")
    assert r.exit_code == 2 and "--dataset and --root are needed" in r.output
