"""InfiniteLoader: deterministic in (seed, iteration, rank), exact resume, disjoint rank shards."""

from __future__ import annotations

import torch

import uda
from uda.config import DatasetConfig
from uda.data import InfiniteLoader, build_dataset


def _ds(num: int = 7):
    return uda.create("dataset", "synthetic", num=num, size="16x8", seed=3)


def _indices(loader: InfiniteLoader, n: int) -> list[list[int]]:
    return [next(loader)["index"].tolist() for _ in range(n)]


def test_deterministic_and_epochs_are_permutations() -> None:
    a = _indices(InfiniteLoader(_ds(), batch_size=7, seed=1), 3)
    b = _indices(InfiniteLoader(_ds(), batch_size=7, seed=1), 3)
    assert a == b
    assert all(sorted(x) == list(range(7)) for x in a)  # one batch = one epoch here
    assert a[0] != a[1]  # a new permutation per epoch
    assert a != _indices(InfiniteLoader(_ds(), batch_size=7, seed=2), 3)


def test_resume_matches_uninterrupted_run() -> None:
    full = InfiniteLoader(_ds(), batch_size=3, seed=0)
    ref = [next(full) for _ in range(6)]
    first = InfiniteLoader(_ds(), batch_size=3, seed=0)
    for _ in range(4):
        next(first)
    state = first.state_dict()
    assert state["iteration"] == 4
    resumed = InfiniteLoader(_ds(), batch_size=3, seed=0)
    resumed.load_state_dict(state)
    for r in ref[4:]:
        got = next(resumed)
        assert torch.equal(got["image"], r["image"]) and torch.equal(got["label"], r["label"])
    by_start = InfiniteLoader(_ds(), batch_size=3, seed=0, start_iter=5)
    assert torch.equal(next(by_start)["index"], ref[5]["index"])


def test_ranks_get_disjoint_shards() -> None:
    r0 = _indices(InfiniteLoader(_ds(8), batch_size=2, seed=0, rank=0, world_size=2), 2)
    r1 = _indices(InfiniteLoader(_ds(8), batch_size=2, seed=0, rank=1, world_size=2), 2)
    s0, s1 = {i for b in r0 for i in b}, {i for b in r1 for i in b}
    assert not s0 & s1 and s0 | s1 == set(range(8))


def test_workers_give_the_same_batches() -> None:
    plain = _indices(InfiniteLoader(_ds(), batch_size=2, seed=0), 4)
    workers = InfiniteLoader(_ds(), batch_size=2, seed=0, num_workers=2)
    assert _indices(workers, 4) == plain
    workers.close()


def test_build_dataset_from_config() -> None:
    ds = build_dataset(DatasetConfig(name="synthetic", split="val", size="32x16", options={"domain": "target", "num": 2}),
                       labels=False)  # fmt: skip
    assert len(ds) == 2 and "label" not in ds[0] and ds[0]["image"].shape == (3, 16, 32)
