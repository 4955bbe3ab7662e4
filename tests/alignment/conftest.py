import pytest
import torch
from alignment_helpers import TinySeg


@pytest.fixture
def net():
    torch.manual_seed(0)
    return TinySeg()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
