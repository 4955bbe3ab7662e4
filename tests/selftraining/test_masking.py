import pytest
import torch

import uda
from uda._errors import ConfigError
from uda.selftraining.masking import BlockMasking


def test_exact_ratio_and_block_structure():
    bm = uda.create("mixing", "block_mask", ratio=0.7, block=4, exact=True)
    torch.manual_seed(0)
    img = torch.rand(3, 3, 40, 40)
    masked, keep = bm(img)
    grid = keep[:, 0, ::4, ::4]  # 10 x 10 blocks
    assert grid.shape == (3, 10, 10)
    assert (grid == 0).flatten(1).sum(1).tolist() == [70, 70, 70]  # exactly 70 of 100 blocks masked per image
    # blocks are constant 4x4 patches and masked pixels are zero
    assert torch.equal(keep, grid.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None])
    assert torch.equal(masked, img * keep)
    assert not torch.equal(grid[0], grid[1])  # drawn per image


def test_bernoulli_default_rate_and_determinism():
    bm = BlockMasking(block=2)
    img = torch.ones(4, 3, 64, 64)
    torch.manual_seed(1)
    a = bm.mask(img)
    torch.manual_seed(1)
    assert torch.equal(a, bm.mask(img))
    assert abs(1 - a.mean().item() - 0.7) < 0.03  # 4096 blocks, sd 0.007


def test_grid_rounding_and_bad_input():
    keep = BlockMasking(ratio=0.5, block=64, exact=True).mask(torch.zeros(1, 3, 96, 160))
    assert keep.shape == (1, 1, 96, 160)  # a 2 x 2 grid (round(1.5) = 2, round(2.5) = 2) of 48 x 80 cells
    assert keep.mean().item() == 0.5 and torch.unique(keep[0, 0, :48, :80]).numel() == 1
    with pytest.raises(ConfigError, match="ratio"):
        BlockMasking(ratio=1.5)
