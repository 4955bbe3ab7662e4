"""All-reduce of the confusion matrix and sharded evaluation under a real 2-process gloo group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from uda.config import EvalConfig
from uda.evaluation import ConfusionMatrix, evaluate

from .conftest import TinySeg


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 19, (2, 6, 6), generator=g)
    target[:, 0] = 255
    return torch.randint(0, 19, (2, 6, 6), generator=g), target


def _items(n: int = 5) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    return [
        {
            "image": torch.rand(3, 8, 12, generator=g),
            "label": torch.randint(0, 19, (8, 12), generator=g),
            "name": str(i),
        }
        for i in range(n)
    ]


def _worker(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        cm = ConfusionMatrix(19)
        cm.update(*_data(rank))
        cm.all_reduce_()
        result = evaluate(TinySeg(), _items(), EvalConfig(size=None), device="cpu", progress=False)
        Path(f"{out}.{rank}").write_text(json.dumps({"matrix": cm.matrix.tolist(), "n": cm.num_images, "eval": result}))
    finally:
        dist.destroy_process_group()


def test_all_reduce_and_sharded_evaluate_match_one_process(tmp_path):
    # fork: the children share the parent's imports (spawn would re-import torch/timm/uda: ~30 s here)
    args = (str(tmp_path / "store"), str(tmp_path / "out"))
    mp.start_processes(_worker, args=args, nprocs=2, join=True, start_method="fork")
    ref = ConfusionMatrix(19)
    for rank in range(2):
        ref.update(*_data(rank))
    single = evaluate(TinySeg(), _items(), EvalConfig(size=None), device="cpu", progress=False)
    for rank in range(2):
        got = json.loads((tmp_path / f"out.{rank}").read_text())
        np.testing.assert_array_equal(np.array(got["matrix"]), ref.matrix)
        assert got["n"] == 4
        # 5 images sharded 3 + 2 over the ranks, then summed: the same scores as one process
        assert got["eval"]["num_images"] == 5
        assert got["eval"]["per_class"] == single["per_class"]
        assert got["eval"]["label_free"] == single["label_free"]
