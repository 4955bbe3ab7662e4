import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny CPU tests run fastest on one thread (and avoid OpenMP oversubscription on shared machines)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
