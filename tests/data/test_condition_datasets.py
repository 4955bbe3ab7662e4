"""acdc, darkzurich, bdd100k and mapillary read their published layouts and encodings, with no conversion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import uda
from uda import DataError
from uda.data import check_dataset, render_condition, write_synthetic
from uda.data._write import _LAYOUT_OFFSET, _SPLIT_OFFSET
from uda.labels import CITYSCAPES_ID_TO_TRAINID, MAPILLARY_ID_TO_TRAINID, labelid_to_trainid_lut

from .conftest import all_ids, save_palettized, save_rgb, truncate

SIZE = (48, 27)
CS_IDS = [*range(34), 255]


def expected(values: list[int], table: dict[int, int]) -> np.ndarray:
    return np.vectorize(lambda v: table.get(int(v), 255))(all_ids(values))


def save_grey(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint8), mode="L").save(path)


def save_jpg(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 32, 3), dtype=np.uint8)).save(path, "JPEG")


# ------------------------------------------------------------------------------------------ synthetic trees read back


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synth")
    out = {}
    for layout in ("acdc", "darkzurich", "bdd100k", "mapillary"):
        out[layout] = base / layout
        write_synthetic(out[layout], "target", layout, num=2, size=SIZE, seed=5)
    return out


def test_acdc_reads_the_synthetic_tree(synth: dict[str, Path]) -> None:
    ds = uda.create("dataset", "acdc", root=synth["acdc"], split="val")
    assert len(ds) == 8 and ds.has_labels and ds.num_classes == 19
    assert [s.name for s in ds.samples[:2]] == ["fog/GOPR0410/GOPR0410_frame_000000", "fog/GOPR0411/GOPR0411_frame_000000"]
    night = [i for i, s in enumerate(ds.samples) if s.name.startswith("night/")]
    item = ds[night[1]]
    index = _LAYOUT_OFFSET["acdc"] + _SPLIT_OFFSET["val"] + 100_000 * 1 + 1
    img, lab = render_condition(index, "night", SIZE, 5)
    np.testing.assert_array_equal(item["label"].numpy(), lab)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy() * 255, img, atol=0.5)
    ids = uda.create("dataset", "acdc", root=synth["acdc"], split="val", label_type="labelIds", conditions="night")
    assert len(ids) == 2
    np.testing.assert_array_equal(ids[1]["label"].numpy(), lab)  # labelIds mapped by the Cityscapes table
    test = uda.create("dataset", "acdc", root=synth["acdc"], split="test", conditions=["rain", "snow"])
    assert len(test) == 4 and "label" not in test[0] and test.conditions == ("rain", "snow")


def test_acdc_reference_images(synth: dict[str, Path]) -> None:
    ds = uda.create("dataset", "acdc", root=synth["acdc"], split="train", conditions="fog", reference=True)
    item = ds[0]
    assert item["reference"].shape == item["image"].shape
    index = _LAYOUT_OFFSET["acdc"]  # fog, train, scene 0
    clear, _ = render_condition(index, "clear", SIZE, 5)
    np.testing.assert_allclose(item["reference"].permute(1, 2, 0).numpy() * 255, clear, atol=0.5)
    refs = uda.create("dataset", "acdc", root=synth["acdc"], split="train_ref", conditions="fog")
    assert len(refs) == 2 and not refs.has_labels and refs.samples[0].image.name.endswith("_rgb_ref_anon.png")
    assert check_dataset("acdc", synth["acdc"], "train", reference=True)["problems"] == []


def test_darkzurich_reads_the_synthetic_tree(synth: dict[str, Path]) -> None:
    train = uda.create("dataset", "darkzurich", root=synth["darkzurich"])
    assert len(train) == 2 and not train.has_labels and train.times == ("night",)  # the UDA works' default
    assert all(s.name.startswith("night/") for s in train.samples)
    every = uda.create("dataset", "darkzurich", root=synth["darkzurich"], times="day,twilight,night")
    assert len(every) == 6 and [s.name.split("/")[0] for s in every.samples[::2]] == ["day", "twilight", "night"]
    val = uda.create("dataset", "darkzurich", root=synth["darkzurich"], split="val")
    index = _LAYOUT_OFFSET["darkzurich"] + _SPLIT_OFFSET["val"] + 100_000 * 2 + 0
    _, lab = render_condition(index, "night", SIZE, 5)
    np.testing.assert_array_equal(val[0]["label"].numpy(), lab)
    assert "label" not in uda.create("dataset", "darkzurich", root=synth["darkzurich"], split="test")[0]
    with pytest.raises(DataError, match="split 'val' has night images only"):
        uda.create("dataset", "darkzurich", root=synth["darkzurich"], split="val", times="day")


def test_bdd100k_reads_the_synthetic_tree(synth: dict[str, Path]) -> None:
    ds = uda.create("dataset", "bdd100k", root=synth["bdd100k"], split="val")
    assert ds.label_dir == synth["bdd100k"] / "seg" / "labels" / "val"
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 27, 48)
    labels = {ds[i]["name"]: ds[i]["label"].numpy() for i in range(2)}
    for i in range(2):
        index = _LAYOUT_OFFSET["bdd100k"] + _SPLIT_OFFSET["val"] + i
        _, lab = render_condition(index, "clear", SIZE, 5)
        assert any(np.array_equal(lab, v) for v in labels.values())
    seg = uda.create("dataset", "bdd100k", root=synth["bdd100k"] / "seg", split="val")  # root = the seg/ folder
    assert [s.name for s in seg.samples] == [s.name for s in ds.samples]


def test_mapillary_maps_the_66_ids(synth: dict[str, Path]) -> None:
    ds = uda.create("dataset", "mapillary", root=synth["mapillary"], split="val")
    assert ds.split == "validation" and len(ds) == 2
    for i in range(2):
        raw = np.asarray(Image.open(ds.samples[i].label))
        lut = np.full(256, 255, dtype=np.int64)
        for k, v in MAPILLARY_ID_TO_TRAINID.items():
            lut[k] = v
        np.testing.assert_array_equal(ds[i]["label"].numpy(), lut[raw])
        assert (ds[i]["label"][-2:] == 255).all()  # the ego-vehicle strip is ignored
    items = [uda.create("dataset", "mapillary", root=synth["mapillary"], split=s)[0]["name"] for s in ("train",
             "training")]  # fmt: skip
    assert items[0] == items[1]


@pytest.mark.parametrize("layout,splits", [("acdc", ["train", "val", "test", "val_ref"]),
                                           ("darkzurich", ["train", "val", "test"]),
                                           ("bdd100k", ["train", "val"]), ("mapillary", ["train", "val"])])  # fmt: skip
def test_check_passes_on_each_synthetic_tree(synth: dict[str, Path], layout: str, splits: list[str]) -> None:
    for split in splits:
        report = check_dataset(layout, synth[layout], split)
        assert report["problems"] == [] and report["num_samples"] > 0


# ------------------------------------------------------------------------------------ hand-made trees, real encodings


def acdc_tree(root: Path) -> Path:
    for cond in ("fog", "night"):
        for split in ("train", "val", "test"):
            stem = f"GOPR0475_frame_{0:06d}"
            save_rgb(root / "rgb_anon" / cond / split / "GOPR0475" / f"{stem}_rgb_anon.png")
            save_rgb(root / "rgb_anon" / cond / f"{split}_ref" / "GOPR0475" / f"{stem}_rgb_ref_anon.png", seed=3)
            if split != "test":
                gt = root / "gt" / cond / split / "GOPR0475"
                save_grey(gt / f"{stem}_gt_labelIds.png", all_ids(CS_IDS))
                save_grey(gt / f"{stem}_gt_labelTrainIds.png", labelid_to_trainid_lut()[all_ids(CS_IDS)])
                save_rgb(gt / f"{stem}_gt_labelColor.png")  # also in the release; never read
    return root


def test_acdc_label_types_agree(tmp_path: Path) -> None:
    root = acdc_tree(tmp_path / "ACDC")
    ref = expected(CS_IDS, CITYSCAPES_ID_TO_TRAINID)
    for label_type in ("labelTrainIds", "labelIds"):
        ds = uda.create("dataset", "acdc", root=root, split="train", label_type=label_type, conditions="fog,night")
        assert len(ds) == 2 and ds.samples[0].label.name.endswith(f"_gt_{label_type}.png")
        np.testing.assert_array_equal(ds[1]["label"].numpy(), ref)


def test_acdc_problems(tmp_path: Path) -> None:
    root = acdc_tree(tmp_path / "ACDC")
    with pytest.raises(DataError, match="condition 'rain' split folder"):
        uda.create("dataset", "acdc", root=root, split="train")  # the default asks for all four conditions
    with pytest.raises(DataError, match="condition 'haze' does not exist; choose from fog, night, rain, snow"):
        uda.create("dataset", "acdc", root=root, conditions="fog,haze")
    (root / "gt/night/val/GOPR0475/GOPR0475_frame_000000_gt_labelTrainIds.png").unlink()
    (root / "rgb_anon/fog/val_ref/GOPR0475/GOPR0475_frame_000000_rgb_ref_anon.png").unlink()
    report = check_dataset("acdc", root, "val", conditions="fog,night", reference=True)
    assert len(report["problems"]) == 2 and report["num_samples"] == 0
    assert any("no label file" in p for p in report["problems"])
    assert any("no reference file" in p for p in report["problems"])


def test_darkzurich_archive_folders_and_label_ids(tmp_path: Path) -> None:
    root = tmp_path / "dark_zurich"
    stem = "GOPR0356_frame_000321"
    for time in ("day", "twilight", "night"):
        save_rgb(root / "Dark_Zurich_train_anon/rgb_anon/train" / time / "GOPR0351" / f"{stem}_rgb_anon.png")
    val = root / "Dark_Zurich_val_anon"
    save_rgb(val / "rgb_anon/val/night/GOPR0356" / f"{stem}_rgb_anon.png")
    save_grey(val / "gt/val/night/GOPR0356" / f"{stem}_gt_labelIds.png", all_ids(CS_IDS))
    save_grey(val / "gt/val/night/GOPR0356" / f"{stem}_gt_labelTrainIds.png", labelid_to_trainid_lut()[all_ids(CS_IDS)])
    assert len(uda.create("dataset", "darkzurich", root=root, times=["day", "night"])) == 2
    for label_type in ("labelTrainIds", "labelIds"):
        ds = uda.create("dataset", "darkzurich", root=root, split="val", label_type=label_type)
        np.testing.assert_array_equal(ds[0]["label"].numpy(), expected(CS_IDS, CITYSCAPES_ID_TO_TRAINID))
        assert ds[0]["name"] == f"night/GOPR0356/{stem}"
    with pytest.raises(DataError, match="Dark_Zurich_test_anon"):
        uda.create("dataset", "darkzurich", root=root, split="test")


def test_bdd100k_current_release_layout(tmp_path: Path) -> None:
    root = tmp_path / "bdd100k"
    tids = [*range(19), 255]
    for split in ("train", "val", "test"):
        for name in ("7d2f7975-e0c1c5a7", "7d4a9094-0455564b"):
            save_jpg(root / "images/10k" / split / f"{name}.jpg")
            if split != "test":
                save_grey(root / "labels/sem_seg/masks" / split / f"{name}.png", all_ids(tids))
                save_rgb(root / "labels/sem_seg/colormaps" / split / f"{name}.png")
    ds = uda.create("dataset", "bdd100k", root=root, split="val")
    assert ds.image_dir == root / "images/10k/val" and ds.label_dir == root / "labels/sem_seg/masks/val"
    assert ds[0]["name"] == "7d2f7975-e0c1c5a7" and ds[0]["image"].shape == (3, 16, 32)
    np.testing.assert_array_equal(ds[0]["label"].numpy(), all_ids(tids))
    assert not uda.create("dataset", "bdd100k", root=root, split="test").has_labels
    save_grey(root / "labels/sem_seg/masks/train/7d2f7975-e0c1c5a7.png", all_ids([0, 19]))
    with pytest.raises(DataError, match=r"7d2f7975-e0c1c5a7\.png: label values 19 are not trainIds"):
        uda.create("dataset", "bdd100k", root=root)[0]
    (root / "labels/sem_seg/masks/train/7d4a9094-0455564b.png").unlink()
    report = check_dataset("bdd100k", root, "train")
    assert len(report["problems"]) == 2 and "no label file" in report["problems"][0]


@pytest.mark.parametrize("encoding", ["P", "L"])
@pytest.mark.parametrize("version_dir", ["v1.2/labels", "labels"])
def test_mapillary_encodings_and_layouts(tmp_path: Path, encoding: str, version_dir: str) -> None:
    root = tmp_path / "mapillary"
    ids = list(range(66))
    for folder in ("training", "validation"):
        save_jpg(root / folder / "images" / "__CRyFzoDOXn6unQ6a3DnQ.jpg")
        save = save_palettized if encoding == "P" else save_grey
        save(root / folder / version_dir / "__CRyFzoDOXn6unQ6a3DnQ.png", all_ids(ids))
    ds = uda.create("dataset", "mapillary", root=root, split="validation")
    assert Image.open(ds.samples[0].label).mode == encoding
    np.testing.assert_array_equal(ds[0]["label"].numpy(), expected(ids, MAPILLARY_ID_TO_TRAINID))
    assert check_dataset("mapillary", root, "val")["problems"] == []


def test_mapillary_problems(tmp_path: Path) -> None:
    root = tmp_path / "mapillary"
    save_jpg(root / "training/images/k1.jpg")
    save_palettized(root / "training/v2.0/labels/k1.png", all_ids([0, 1]))
    with pytest.raises(DataError, match=r"only v2\.0 labels found: they have 124 classes"):
        uda.create("dataset", "mapillary", root=root)
    save_palettized(root / "training/v1.2/labels/k1.png", all_ids([13, 66]))
    with pytest.raises(DataError, match=r"k1\.png: label values 66 are not Mapillary Vistas v1.2 class ids"):
        uda.create("dataset", "mapillary", root=root)[0]
    with pytest.raises(DataError, match="split 'dev' does not exist"):
        uda.create("dataset", "mapillary", root=root, split="dev")


def test_broken_trees_exit_1_in_the_cli(synth: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from uda.cli import main

    for layout, split, pick in (("acdc", "val", "gt"), ("darkzurich", "val", "gt"), ("bdd100k", "val", "labels"),
                                ("mapillary", "val", "labels")):  # fmt: skip
        root = tmp_path / layout
        shutil.copytree(synth[layout], root)
        ok = CliRunner().invoke(main, ["data", "check", "--dataset", layout, "--root", str(root), "--json"])
        assert ok.exit_code == 0 and json.loads(ok.stdout)["problems"] == [], (layout, ok.output)
        labels = sorted(p for p in root.rglob("*.png") if pick in p.parts and "val" in p.as_posix()
                        and not p.name.endswith("_gt_labelIds.png"))  # acdc/darkzurich read labelTrainIds
        truncate(labels[0])
        r = CliRunner().invoke(main, ["data", "check", "--dataset", layout, "--root", str(root), "--split", split],
                               catch_exceptions=False)  # fmt: skip
        assert r.exit_code == 1, (layout, r.output)
        assert labels[0].name in r.stderr and "1 problem(s)" in r.stderr
