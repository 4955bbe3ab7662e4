"""Custom class maps: each bad file gives one clear line; every built-in dataset takes one; unknown ids raise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import uda
from uda import DataError
from uda.config import DatasetConfig
from uda.data import build_dataset, check_dataset, load_class_map

from .conftest import all_ids, save_palettized, save_rgb

GOOD = "classes: [road, car, person]\nids: {0: ignore, 1: road, 2: car, 7: road, 9: person}\n"


def write(tmp_path: Path, text: str, name: str = "map.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_good_map(tmp_path: Path) -> None:
    m = load_class_map(write(tmp_path, GOOD), num_classes=3)
    assert m.classes == ("road", "car", "person") and m.num_classes == 3
    assert m.label_map.mapping == {0: 255, 1: 0, 2: 1, 7: 0, 9: 2}
    assert m.label_map.known == frozenset({0, 1, 2, 7, 9})
    cs = load_class_map(write(tmp_path, "classes: cityscapes\nids: {26: car, 7: road, 255: ignore}\n", "cs.yaml"))
    assert cs.num_classes == 19 and cs.label_map.mapping == {26: 13, 7: 0, 255: 255}
    default = load_class_map(write(tmp_path, "ids: {1: sky}\n", "d.yaml"))  # classes default to cityscapes
    assert default.label_map.mapping == {1: 10}
    js = load_class_map(write(tmp_path, json.dumps({"classes": ["a", "b"], "ids": {"3": "b"}}), "m.json"))
    assert js.label_map.mapping == {3: 1}


@pytest.mark.parametrize(
    "text,message",
    [
        ("classes: [road, car, road]\nids: {1: road}\n", r"classes: 'road' is listed twice"),
        ("classes: [road, car]\nids: {1: raod}\n", r"id 1: 'raod' is not a class \(did you mean 'road'\?\)"),
        ("classes: cityscapes\nids: {1: tree}\n", r"id 1: 'tree' is not a class; use one of the 19 classes or ignore"),
        ("classes: [road]\nids: {x: road}\n", r"id 'x' is not an integer"),
        ("classes: [road]\nids: {1.5: road}\n", r"id 1\.5 is not an integer"),
        ("classes: [road]\nids: {-1: road}\n", r"id -1 is out of range"),
        ("classes: [road]\nids: {1: road, 1: ignore}\n", r"key 1 is given twice \(line 2\)"),
        ("classes: [road]\nids: {1: 0}\n", r"id 1: 0 is not a class name; write the name"),
        ("classes: [road, ignore]\nids: {1: road}\n", r"'ignore' is reserved"),
        ("classes: mapillary\nids: {1: road}\n", r"'mapillary' is not a known class set \(cityscapes\)"),
        ("classes: []\nids: {1: road}\n", r"classes must be a class set name"),
        ("classes: [road, 3]\nids: {1: road}\n", r"classes: 3 is not a class name"),
        ("classes: [road]\nids: {}\n", r"'ids' must be a non-empty mapping"),
        ("classes: [road]\n", r"'ids' must be a non-empty mapping"),
        ("classes: [road]\nids: {1: road}\nnames: [x]\n", r"unknown key 'names'"),
        ("- road\n- car\n", r"expected a mapping with 'classes' and 'ids', got list"),
        ("classes: [road\nids: {1: road}\n", r"cannot parse"),
    ],
)
def test_bad_maps_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as e:
        load_class_map(path)
    assert str(e.value).startswith(f"class map {path}") and "\n" not in str(e.value)


def test_class_count_must_match_the_model(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"classes has 3 classes but the model predicts 19 \(model\.num_classes\)"):
        load_class_map(write(tmp_path, GOOD), num_classes=19)
    with pytest.raises(DataError, match="does not exist"):
        load_class_map(tmp_path / "missing.yaml")


def mine(tmp_path: Path, values: list[int]) -> Path:
    root = tmp_path / "mine"
    save_rgb(root / "images" / "a.png")
    save_palettized(root / "labels" / "a.png", all_ids(values))
    return root


def test_folder_with_a_class_map_and_an_unknown_id(tmp_path: Path) -> None:
    root = mine(tmp_path, [0, 1, 2, 7, 9])
    cmap = write(tmp_path, GOOD)
    for kw in ({"class_map": cmap}, {"label_map": cmap}):  # a class map given as label_map works too
        ds = uda.create("dataset", "folder", root=root, **kw)
        assert ds.class_names == ("road", "car", "person") and ds.num_classes == 3
        lut = {0: 255, 1: 0, 2: 1, 7: 0, 9: 2}
        np.testing.assert_array_equal(ds[0]["label"].numpy(), np.vectorize(lut.get)(all_ids([0, 1, 2, 7, 9])))
    save_palettized(root / "labels" / "a.png", all_ids([1, 5]))
    with pytest.raises(DataError, match=rf"{root / 'labels' / 'a.png'}: label values 5 are not ids listed in"):
        uda.create("dataset", "folder", root=root, class_map=cmap)[0]
    with pytest.raises(DataError, match="either label_map"):
        uda.create("dataset", "folder", root=root, class_map=cmap, label_map=cmap)


def test_every_builtin_file_dataset_takes_class_map(gta5_root: Path, synthia_root: Path, cityscapes_root: Path,
                                                    tmp_path: Path) -> None:  # fmt: skip
    # GTA5/Cityscapes label ids 0..33 and 255; keep road (7) and car (26) only
    ids = {i: "ignore" for i in [*range(34), 255]} | {7: "road", 26: "car"}
    cmap = write(tmp_path, "classes: [road, car]\nids:\n" + "".join(f"  {k}: {v}\n" for k, v in ids.items()))
    raw = all_ids([*range(34), 255])
    want = np.where(raw == 7, 0, np.where(raw == 26, 1, 255))
    for name, root in (("gta5", gta5_root), ("cityscapes", cityscapes_root)):
        ds = uda.create("dataset", name, root=root, class_map=cmap)
        assert ds.num_classes == 2
        np.testing.assert_array_equal(ds[0]["label"].numpy(), want)
    syn = write(tmp_path, "ids: {3: road, 8: car}\n", "synthia.yaml")  # SYNTHIA ids 3 = road, 8 = car
    with pytest.raises(DataError, match=r"0000000\.png: label values 0, 1, 2, 4, 5, 6, 7, 9 … are not ids listed"):
        uda.create("dataset", "synthia", root=synthia_root, class_map=syn)[0]


def test_class_map_through_a_config_section_and_check(tmp_path: Path) -> None:
    root = mine(tmp_path, [0, 1, 2])
    cmap = write(tmp_path, "classes: [road, car]\nids: {0: ignore, 1: road, 2: car}\n")
    cfg = DatasetConfig(name="folder", root=str(root), split="train", options={"class_map": str(cmap)})
    ds = build_dataset(cfg)  # what --set data.val.options.class_map=PATH builds
    assert ds.class_names == ("road", "car")
    report = check_dataset("folder", root, "train", class_map=str(cmap))
    assert report["problems"] == [] and list(report["class_pixels"]) == ["road", "car"]
    n = int((all_ids([0, 1, 2]) == 1).sum())
    assert report["class_pixels"]["road"] == n and report["ignored_pixels"] == int((all_ids([0, 1, 2]) == 0).sum())


def test_synthetic_dataset_maps_its_trainids(tmp_path: Path) -> None:
    cmap = write(tmp_path, "classes: [flat, other]\nids:\n" + "".join(
        f"  {i}: {'flat' if i in (0, 1) else 'other'}\n" for i in range(19)))  # fmt: skip
    plain = uda.create("dataset", "synthetic", num=1, size="32x16")[0]["label"]
    merged = uda.create("dataset", "synthetic", num=1, size="32x16", class_map=cmap)[0]["label"]
    assert torch.equal(merged, (plain > 1).long())
    partial = write(tmp_path, "ids: {0: road}\n", "partial.yaml")
    with pytest.raises(DataError, match=r"synthetic train scene 0: label values .* are not ids listed in"):
        uda.create("dataset", "synthetic", num=1, size="32x16", class_map=partial)[0]


def test_check_cli_with_a_class_map_and_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from uda.cli import main

    root = mine(tmp_path, [0, 1, 2, 5])
    cmap = write(tmp_path, "classes: [road, car]\nids: {0: ignore, 1: road, 2: car}\n")
    r = CliRunner().invoke(main, ["data", "check", "--dataset", "folder", "--root", str(root), "--class-map",
                                  str(cmap), "--json"], catch_exceptions=False)  # fmt: skip
    assert r.exit_code == 1 and "label values 5 are not ids listed in" in json.loads(r.stdout)["problems"][0]
    bad = write(tmp_path, "classes: [road, road]\nids: {1: road}\n", "bad.yaml")
    r = CliRunner().invoke(main, ["data", "check", "--dataset", "folder", "--root", str(root), "--class-map",
                                  str(bad)], catch_exceptions=False)  # fmt: skip
    assert r.exit_code == 2 and "'road' is listed twice" in r.stderr and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["data", "check", "--dataset", "folder", "--root", str(root), "-o", "oops"])
    assert r.exit_code == 2 and "is not KEY=VALUE" in r.output


def test_palette_never_matters(tmp_path: Path) -> None:
    root = mine(tmp_path, [1, 2])
    img = Image.open(root / "labels" / "a.png")
    img.putpalette([0] * 768)
    img.save(root / "labels" / "a.png")
    ds = uda.create("dataset", "folder", root=root, class_map=write(tmp_path, "ids: {1: road, 2: car}\n"))
    assert set(ds[0]["label"].unique().tolist()) == {0, 13}
