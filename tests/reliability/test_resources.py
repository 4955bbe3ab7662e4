"""Resources: an output folder that cannot be written, a disk that fills up during the run, a DataLoader worker
that dies. Tests run as root (here and in CI), where ``chmod`` does not stop writes: unwritable means a path under
a regular file, and a full disk is simulated by making the OS calls raise ``ENOSPC``."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from uda._errors import DataError
from uda._io import load_checkpoint
from uda._registry import registry
from uda.engine import train

from .conftest import invoke, one_line_error, sets, tiny_config


def test_unwritable_out_dir_exits_2_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = invoke("train", "source_only_synthetic", "--out", blocker / "sub", "--device", "cpu",
               *sets("trainer.max_iters=2"))
    assert r.exit_code == 2
    line = one_line_error(r)
    assert str(blocker / "sub") in line and "not writable" in line
    assert blocker.read_text() == "x"


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_at_start_fails_before_training(tmp_path, monkeypatch):
    real = Path.write_bytes

    def write_bytes(self, data):
        return _enospc() if self.parent.name == "checkpoints" else real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    r = invoke("train", "source_only_synthetic", "--out", tmp_path / "run", "--device", "cpu",
               *sets("trainer.max_iters=2"))
    assert r.exit_code == 2
    assert "No space left on device" in one_line_error(r)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_disk_full_mid_run_at_the_os_level_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """``os.replace`` (the atomic rename) fails with ENOSPC from the second checkpoint on."""
    import uda._io as io_mod

    real, count = os.replace, {"n": 0}

    def replace(src, dst):
        if Path(dst).name.startswith("iter_") and Path(dst).suffix == ".pt":
            count["n"] += 1
            if count["n"] > 1:
                _enospc()
        return real(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", replace)
    r = invoke("train", "source_only_synthetic", "--out", tmp_path / "run", "--device", "cpu",
               *sets("trainer.max_iters=6", "trainer.checkpoint_every=2"))
    assert r.exit_code == 2
    line = one_line_error(r)
    assert "iter_0000002.pt" in line and "intact" in line
    ck = tmp_path / "run" / "checkpoints"
    assert load_checkpoint(ck / "last.pt")["global_iter"] == 2
    assert sorted(p.name for p in ck.iterdir()) == ["iter_0000002.pt", "iter_0000002.pt.sha256", "last.pt",
                                                    "last.pt.sha256"]  # no temp file left behind


class _Dies(torch.utils.data.Dataset):
    """A synthetic source whose items kill the DataLoader worker process that loads them."""

    def __init__(self, how: str, **kw) -> None:
        from uda.config import DatasetConfig
        from uda.data import build_dataset

        kw.pop("root", None)
        self.inner = build_dataset(DatasetConfig(name="synthetic", size=kw.get("size"),
                                                 options={"domain": "source", "num": 8}), labels=kw.get("labels", True))
        self.how = how

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        if torch.utils.data.get_worker_info() is not None:
            if self.how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does
        return self.inner[i]


@pytest.fixture
def dying_dataset():
    reg = registry("dataset")
    reg.add("zz_dies", lambda how="exit", **kw: _Dies(how, **kw))
    yield "zz_dies"
    reg._entries.pop("zz_dies")
    reg._docs.pop("zz_dies", None)


@pytest.mark.parametrize(("how", "cause"), [("exit", "exit code 3"), ("kill", "SIGKILL")])
def test_dataloader_worker_crash_is_reported_with_its_cause(how, cause, dying_dataset, tmp_path):
    cfg = tiny_config("source_only_synthetic", "trainer.max_iters=2", f"data.source.name={dying_dataset}",
                      "data.source.root=/nonexistent", f"data.source.options={{how: {how}}}", "data.num_workers=1")
    start = time.monotonic()
    with pytest.raises(DataError, match=rf"worker died while loading batch 0 \(pid \d+ .*{cause}") as e:
        train(cfg, tmp_path / "run")
    assert time.monotonic() - start < 60, "the crash was not noticed promptly"
    assert "\n" not in str(e.value) and "num_workers" in str(e.value)
