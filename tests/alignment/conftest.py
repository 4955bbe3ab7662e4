import pytest
import torch
from alignment_helpers import TinySeg


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny CPU tests run fastest on one thread (and avoid OpenMP oversubscription on shared machines)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def net():
    torch.manual_seed(0)
    return TinySeg()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
