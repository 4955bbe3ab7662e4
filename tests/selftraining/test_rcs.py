from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset

import uda
from uda._errors import ConfigError, DataError
from uda.selftraining import rcs as rcs_mod
from uda.selftraining.crop import RandomCropFlip
from uda.selftraining.rcs import RareClassSampling, class_pixel_counts, class_probabilities


class _Files(Dataset):
    """A file-backed dataset: each label file holds int16 bytes of an (H, W) label."""

    def __init__(self, root: Path, labels: list[torch.Tensor], size: tuple[int, int] | None = None) -> None:
        self.samples, self.shape, self.size, self.dataset = [], labels[0].shape, size, "fake"
        for i, lab in enumerate(labels):
            f = root / f"{i}.bin"
            f.write_bytes(lab.to(torch.int16).numpy().tobytes())
            self.samples.append(SimpleNamespace(name=str(i), label=f))
        self.loads = 0

    def __len__(self) -> int:
        return len(self.samples)

    def load_label(self, sample, size=None) -> torch.Tensor:
        self.loads += 1
        data = bytearray(Path(sample.label).read_bytes())
        return torch.frombuffer(data, dtype=torch.int16).view(self.shape).long()

    def __getitem__(self, i: int) -> dict:
        lab = self.load_label(self.samples[i])
        return {"image": torch.zeros(3, *lab.shape), "label": lab, "index": i}


def _labels() -> list[torch.Tensor]:
    a = torch.zeros(10, 10, dtype=torch.long)  # 100 px of class 0
    b = torch.zeros(10, 10, dtype=torch.long)
    b[:4] = 1  # 40 px of class 1
    c = torch.full((10, 10), 255)
    c[:, :1] = 2  # 10 px of class 2, the rest ignored
    return [a, b, c]


def test_class_probabilities_exact():
    counts = torch.tensor([[100, 0, 0, 0], [60, 40, 0, 0], [0, 0, 10, 0]])
    classes, p = class_probabilities(counts, 0.5)
    f = torch.tensor([160, 40, 10], dtype=torch.float64) / 210
    ref = torch.exp((1 - f) / 0.5) / torch.exp((1 - f) / 0.5).sum()
    assert classes.tolist() == [0, 1, 2]
    torch.testing.assert_close(p, ref.float())


def test_counts_cached_and_invalidated(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    ds = _Files(root, _labels())
    cache = tmp_path / "cache"
    counts = class_pixel_counts(ds, 4, cache)
    assert counts.tolist() == [[100, 0, 0, 0], [60, 40, 0, 0], [0, 0, 10, 0]]
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"  # no temporary file left behind
    ds.loads = 0
    assert torch.equal(class_pixel_counts(ds, 4, cache), counts) and ds.loads == 0  # served from the cache
    lab = _labels()[0]
    lab[0, 0] = 3
    (root / "0.bin").write_bytes(lab.to(torch.int16).numpy().tobytes())  # the dataset changed
    assert class_pixel_counts(ds, 4, cache)[0].tolist() == [99, 0, 0, 1] and ds.loads == 3
    assert len(list(cache.iterdir())) == 2
    files[0].write_text("{broken")  # a damaged cache file is recomputed, not trusted
    (root / "0.bin").write_bytes(_labels()[0].to(torch.int16).numpy().tobytes())
    assert torch.equal(class_pixel_counts(ds, 4, cache), counts)


def test_candidates_strictly_above_min_pixels_and_sampling_rates(tmp_path):
    ds = _Files(tmp_path, _labels())
    rcs = RareClassSampling(ds, num_classes=4, temperature=1.0, min_pixels=10, cache_dir=tmp_path / "c")
    # class 2 has exactly 10 px: not a candidate (the original's strict >), so only 0 and 1 are sampled
    assert rcs.classes.tolist() == [0, 1] and rcs.candidates[0].tolist() == [0, 1] and rcs.candidates[1].tolist() == [1]
    f = torch.tensor([160 / 210, 40 / 210])
    p = torch.softmax(1 - f, 0)
    torch.testing.assert_close(rcs.probs, p)
    picks = [rcs[pos]["rcs_class"] for pos in range(600)]
    assert abs(picks.count(1) / 600 - float(p[1])) < 0.06
    assert all(rcs[pos]["index"] == 1 for pos in range(50) if rcs[pos]["rcs_class"] == 1)


def test_deterministic_from_seed_and_pos(tmp_path):
    ds = uda.create("dataset", "synthetic", num=6, size="32x16")
    crops = RandomCropFlip(ds, size=8, cat_max_ratio=0.75, seed=2)
    a = RareClassSampling(crops, min_pixels=10, seed=2, cache_dir=tmp_path)
    b = RareClassSampling(crops, min_pixels=10, seed=2, cache_dir=tmp_path)
    for pos in (0, 5, 17):
        x, y = a[pos], b[pos]
        assert x["rcs_class"] == y["rcs_class"] and torch.equal(x["image"], y["image"])
    c = RareClassSampling(crops, min_pixels=10, seed=3, cache_dir=tmp_path)
    assert [a[p]["rcs_class"] for p in range(20)] != [c[p]["rcs_class"] for p in range(20)]


def test_crop_retries_show_the_class(tmp_path):
    # class 1: a 4x4 block in a 20x20 image of class 0; 8x8 crops; need > 0.5 * 20 = 10 px of class 1 in the crop
    lab = torch.zeros(20, 20, dtype=torch.long)
    lab[2:6, 12:16] = 1
    ds = _Files(tmp_path, [lab])
    crops = RandomCropFlip(ds, size=8, flip=0.0)
    rcs = RareClassSampling(crops, num_classes=2, min_pixels=12, min_crop_ratio=0.5, cache_dir=tmp_path / "c")
    assert rcs.classes.tolist() == [0, 1]
    hits = [int((it["label"] == 1).sum()) > 6 for it in (rcs[p] for p in range(200)) if it["rcs_class"] == 1]
    # one crop shows > 6 px of the block with q = 36/169; 11 draws: 1 - (1 - q)^11 = 0.93
    assert len(hits) > 150 and sum(hits) / len(hits) > 0.85
    no_retry = RareClassSampling(crops, num_classes=2, min_pixels=12, min_crop_ratio=0.0, cache_dir=tmp_path / "c")
    hits0 = [int((it["label"] == 1).sum()) > 6 for it in (no_retry[p] for p in range(200)) if it["rcs_class"] == 1]
    assert sum(hits0) / len(hits0) < 0.4


def test_reference_size_scales_the_sample_threshold(tmp_path):
    ds = _Files(tmp_path, _labels(), size=(10, 10))
    rcs = RareClassSampling(ds, num_classes=4, min_pixels=36, reference_size=(20, 20), cache_dir=tmp_path / "c")
    assert rcs.sample_min_pixels == 9.0 and rcs.classes.tolist() == [0, 1, 2]  # 36 · 100/400 = 9 < 10


def test_bad_input(tmp_path):
    ds = _Files(tmp_path, _labels())
    with pytest.raises(DataError, match="min_pixels"):
        RareClassSampling(ds, num_classes=4, min_pixels=1000, cache_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match="temperature"):
        RareClassSampling(ds, num_classes=4, temperature=0.0, cache_dir=tmp_path / "c")
    tgt = uda.create("dataset", "synthetic", num=2, size="16x8", labels=False)
    with pytest.raises(DataError, match="labelled"):
        RareClassSampling(tgt, cache_dir=tmp_path / "c")


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("UDA_CACHE_DIR", str(tmp_path))
    assert rcs_mod.default_cache_dir() == tmp_path / "rcs"
