"""The translated-dataset cache: layout, resume after an interruption, sample grids, saved translators."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

import uda
from uda.translators import load_translator, save_sample_grid, save_translator, translate_dataset


class Items(torch.utils.data.Dataset):
    """A tiny dataset in the item format; counts decodes (``__getitem__`` calls)."""

    def __init__(self, n=5, names=None):
        g = torch.Generator().manual_seed(0)
        self.images = [torch.rand(3, 8, 12, generator=g) for _ in range(n)]
        self.names = names or [f"city{i % 2}/img_{i:03d}" for i in range(n)]
        self.loads = 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.loads += 1
        return {"image": self.images[i], "name": self.names[i], "index": i}


class Sample:
    def __init__(self, name):
        self.name = name


class FileLike(Items):
    """Exposes ``samples[i].name`` like the file datasets, so existing files are skipped unread."""

    @property
    def samples(self):
        return [Sample(n) for n in self.names]


class Counting(torch.nn.Module):
    """Identity translator that counts calls and can fail after some."""

    def __init__(self, fail_after=None):
        super().__init__()
        self.calls, self.fail_after = 0, fail_after

    def forward(self, source, target=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.calls += 1
        return source


def read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_cache_mirrors_names_and_stores_the_translation(tmp_path):
    ds = Items()
    counts = translate_dataset(uda.create("translator", "identity"), ds, tmp_path, progress=False, batch_size=2)
    assert counts == {"written": 5, "skipped": 0}
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(f"{n}.png" for n in ds.names)
    want = (ds.images[3].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(read(tmp_path / f"{ds.names[3]}.png"), want)


def test_cache_resumes_after_an_interruption_without_redoing_files(tmp_path):
    ds = Items(n=6)
    with pytest.raises(KeyboardInterrupt):
        translate_dataset(Counting(fail_after=4), ds, tmp_path, progress=False)
    done = sorted(tmp_path.rglob("*.png"))
    assert len(done) == 4
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"]  # no temporary leftovers
    old = 1_000_000_000
    for p in done:  # mark the finished files so a rewrite would show
        os.utime(p, (old, old))
    tr = Counting()
    counts = translate_dataset(tr, ds, tmp_path, progress=False)
    assert counts == {"written": 2, "skipped": 4} and tr.calls == 2
    assert all(p.stat().st_mtime == old for p in done)
    assert len(list(tmp_path.rglob("*.png"))) == 6
    tr = Counting()
    assert translate_dataset(tr, ds, tmp_path, progress=False) == {"written": 0, "skipped": 6} and tr.calls == 0


def test_file_datasets_are_skipped_without_decoding(tmp_path):
    ds = FileLike(n=4)
    translate_dataset(Counting(), ds, tmp_path, progress=False)
    ds.loads = 0
    assert translate_dataset(Counting(), ds, tmp_path, progress=False)["skipped"] == 4
    assert ds.loads == 0


def test_fda_cache_uses_target_images(tmp_path):
    ds = Items(n=2, names=["a", "b"])
    target = torch.rand(1, 3, 8, 12)
    fda = uda.create("translator", "fda", beta=0.2)
    translate_dataset(fda, ds, tmp_path, target=target, progress=False)
    want = fda(ds.images[0][None], target)[0]
    got = torch.from_numpy(read(tmp_path / "a.png").copy()).permute(2, 0, 1).float() / 255
    assert torch.allclose(got, want, atol=1 / 255 + 1e-6)


def test_sample_grid(tmp_path):
    x = torch.rand(3, 3, 8, 10)
    save_sample_grid(x, x.flip(1), x, tmp_path / "grid.png", padding=2)
    img = read(tmp_path / "grid.png")
    assert img.shape == (3 * 8 + 4 * 2, 3 * 10 + 4 * 2, 3)
    assert np.array_equal(img[2:10, 2:12], (x[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    save_sample_grid(x, x, None, tmp_path / "two.png", max_rows=1)
    assert read(tmp_path / "two.png").shape == (8 + 4, 2 * 10 + 6, 3)


SMALL = {"cyclegan": {"ngf": 4, "n_blocks": 1, "ndf": 4}}


@pytest.mark.parametrize("name", uda.list_components("translator"))
def test_every_translator_saves_and_loads(tmp_path, name):
    torch.manual_seed(0)
    tr = uda.create("translator", name, **SMALL.get(name, {}))
    if name.startswith("cyclegan"):  # the pool's history is restored too
        tr.pool_t(torch.rand(2, 3, 32, 32))
    save_translator(tr, tmp_path / "translator.pt")
    back = load_translator(tmp_path)  # a run directory works as well as the file
    assert type(back) is type(tr) and back.spec() == tr.spec()
    x, t = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(back(x, t), tr.eval()(x, t))
    for k, v in tr.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, back.state_dict()[k]), k
    if name.startswith("cyclegan"):
        assert len(back.pool_t.images) == 2


def test_load_translator_errors(tmp_path):
    with pytest.raises(uda.CheckpointError, match="no translator checkpoint"):
        load_translator(tmp_path)
    torch.save({"model": {}}, tmp_path / "x.pt")
    with pytest.raises(uda.CheckpointError, match="holds no translator"):
        load_translator(tmp_path / "x.pt")


def test_cache_reads_back_through_images_root(tmp_path):
    """A real file dataset reads the cache with ``images_root`` while its labels stay in the original root."""
    from uda.data import write_synthetic

    root = write_synthetic(tmp_path / "gta", domain="source", layout="gta5", num=3, size=(32, 16), seed=0)["root"]
    ds = uda.create("dataset", "gta5", root=root, split="train")
    fda = uda.create("translator", "fda", beta=0.2)
    target = torch.rand(1, 3, 16, 32)
    assert translate_dataset(fda, ds, tmp_path / "cache", target=target, progress=False)["written"] == 3
    cached = uda.create("dataset", "gta5", root=root, split="train", images_root=tmp_path / "cache")
    for i in range(3):
        a, b = ds[i], cached[i]
        assert torch.equal(a["label"], b["label"])
        assert torch.allclose(b["image"], fda(a["image"][None], target)[0], atol=1 / 255 + 1e-6)


def test_load_translator_from_a_training_checkpoint(tmp_path):
    """uda.engine checkpoints hold the translator's state dict; its name comes from the saved config."""
    from uda._io import save_checkpoint

    tr = uda.create("translator", "cyclegan_tiny", ngf=4)
    config = {"recipe": {"name": "mlfa", "translator": "cyclegan_tiny", "translator_options": {"ngf": 4}}}
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint({"model": {}, "translator": tr.state_dict(), "config": config}, tmp_path / "checkpoints/last.pt")
    back = load_translator(tmp_path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(back(x), tr.eval()(x))
    save_checkpoint({"model": {}, "translator": None, "config": {"recipe": {}}}, tmp_path / "none.pt")
    with pytest.raises(uda.CheckpointError, match="holds no translator"):
        load_translator(tmp_path / "none.pt")
