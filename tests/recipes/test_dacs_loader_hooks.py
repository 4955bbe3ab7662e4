"""The loader hook for stream-sampling datasets (rare-class sampling, random crops): the index is the stream position."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from uda.data import InfiniteLoader


class _Echo(Dataset):
    def __init__(self, stream: bool) -> None:
        self.stream_sampling = stream

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.full((3, 2, 2), float(i)), "index": i}


def _indices(loader: InfiniteLoader, n: int) -> list[list[int]]:
    return [next(loader)["index"].tolist() for _ in range(n)]


def test_stream_sampling_dataset_receives_global_positions_and_resumes():
    a = InfiniteLoader(_Echo(True), batch_size=2, seed=3, rank=1, world_size=2)
    assert _indices(a, 3) == [[1, 3], [5, 7], [9, 11]]  # pos · world_size + rank: never repeats, disjoint ranks
    state = a.state_dict()
    later = _indices(a, 2)
    b = InfiniteLoader(_Echo(True), batch_size=2, seed=3, rank=1, world_size=2, num_workers=1)
    b.load_state_dict(state)
    assert _indices(b, 2) == later == [[13, 15], [17, 19]]
    # an ordinary dataset still gets permuted dataset indices
    c = InfiniteLoader(_Echo(False), batch_size=2, seed=3)
    assert all(0 <= i < 5 for batch in _indices(c, 4) for i in batch)


def test_creating_the_iterator_does_not_draw_from_the_global_rng():
    torch.manual_seed(0)
    expect = torch.rand(3)
    torch.manual_seed(0)
    next(InfiniteLoader(_Echo(False), batch_size=2, seed=0))
    assert torch.equal(torch.rand(3), expect)  # a recipe's mixing masks do not depend on when the loader started
