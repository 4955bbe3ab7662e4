"""Loss functions against hand-written formulas; every registered loss is exercised."""

import math

import pytest
import torch
import torch.nn.functional as F

import uda
from uda.losses import entropy_map, gan_loss, minent, seg_ce, self_information, style


def test_seg_ce_upsamples_logits_like_the_originals():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6)
    labels = torch.randint(0, 5, (2, 16, 24))
    labels[0, :3] = 255
    up = F.interpolate(logits, size=(16, 24), mode="bilinear", align_corners=True)
    want = F.cross_entropy(up, labels, ignore_index=255)
    assert torch.allclose(seg_ce(logits, labels), want, atol=1e-6)


def test_seg_ce_downsampled_labels_option():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 8, 8))
    small = labels[:, ::2, ::2]  # nearest downsampling by 2 picks the top-left pixel of each cell
    want = F.cross_entropy(logits, small)
    assert torch.allclose(seg_ce(logits, labels, resize="labels"), want, atol=1e-6)


def test_seg_ce_all_ignored_is_zero_without_nan():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = seg_ce(logits, torch.full((2, 8, 8), 255))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() == 0


def test_entropy_map_bounds_and_formula():
    c = 4
    uniform = torch.zeros(1, c, 2, 2)
    confident = torch.full((1, c, 2, 2), -50.0)
    confident[:, 0] = 50.0
    assert torch.allclose(entropy_map(uniform), torch.ones(1, 2, 2))
    assert entropy_map(confident).max() < 1e-6
    logits = torch.randn(2, c, 3, 3)
    p = logits.softmax(1)
    want = -(p * torch.log2(p)).sum(1) / math.log2(c)
    assert torch.allclose(entropy_map(logits), want, atol=1e-6)
    # ADVENT's D input keeps one channel per class; its channel sum is the entropy.
    si = self_information(p)
    assert si.shape == p.shape
    assert torch.allclose(si, -p * torch.log2(p + 1e-30) / math.log2(c))
    assert torch.allclose(minent(logits), want.mean(), atol=1e-6)


def test_gan_losses_match_their_definitions():
    x = torch.randn(2, 1, 3, 3)
    assert torch.allclose(gan_loss(x, 0.0, "bce"), F.binary_cross_entropy_with_logits(x, torch.zeros_like(x)))
    assert torch.allclose(gan_loss(x, 1.0, "bce"), F.binary_cross_entropy_with_logits(x, torch.ones_like(x)))
    assert torch.allclose(gan_loss(x, 1.0, "lsgan"), ((x - 1) ** 2).mean())
    assert torch.allclose(gan_loss(x, 1.0, "hinge"), F.relu(1 - x).mean())
    assert torch.allclose(gan_loss(x, 0.0, "hinge"), F.relu(1 + x).mean())
    assert torch.allclose(gan_loss(x, 0.0, "hinge", for_discriminator=False), x.mean())
    assert torch.allclose(gan_loss(x, 1.0, "hinge", for_discriminator=False), -x.mean())
    with pytest.raises(uda.UdaError):
        gan_loss(x, 0.0, "wgan")


def test_style_loss_zero_for_equal_statistics_and_positive_otherwise():
    torch.manual_seed(0)
    a = torch.randn(2, 6, 5, 5)
    perm = a.flatten(2)[..., torch.randperm(25)].view_as(a)  # same per-channel stats, different content
    assert style(a, perm).item() < 1e-10
    b = a * 2 + 1
    mean_a, mean_b = a.mean((2, 3)).mean(0), b.mean((2, 3)).mean(0)
    std_a = (a.var((2, 3), unbiased=False) + 1e-5).sqrt().mean(0)
    std_b = (b.var((2, 3), unbiased=False) + 1e-5).sqrt().mean(0)
    want = F.mse_loss(mean_a, mean_b) + F.mse_loss(std_a, std_b)
    assert torch.allclose(style(a, b), want, atol=1e-6)
    assert style(a, torch.randn(3, 6, 7, 7)).shape == ()  # batch and spatial sizes may differ


C = 4
EXAMPLES = {
    "seg_ce": lambda: (torch.randn(2, C, 4, 4, requires_grad=True), torch.randint(0, C, (2, 8, 8))),
    "entropy": lambda: (torch.randn(2, C, 4, 4, requires_grad=True),),
    "minent": lambda: (torch.randn(2, C, 4, 4, requires_grad=True),),
    "bce": lambda: (torch.randn(2, 1, 3, 3, requires_grad=True), 0.0),
    "lsgan": lambda: (torch.randn(2, 1, 3, 3, requires_grad=True), 1.0),
    "hinge": lambda: (torch.randn(2, 1, 3, 3, requires_grad=True), 1.0),
    "cycle_l1": lambda: (torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)),
    "identity_l1": lambda: (torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)),
    "style": lambda: (torch.randn(2, 6, 4, 4, requires_grad=True), torch.randn(2, 6, 5, 5)),
    "pixel_weighted_ce": lambda: (torch.randn(2, C, 4, 4, requires_grad=True), torch.randint(0, C, (2, 8, 8)),
                                  torch.rand(2, 8, 8)),
    # the student's features differ from the frozen stride-4 encoder's on thing-class (13) pixels
    "imnet_feature_distance": lambda: (torch.randn(2, 4, 4, 4, requires_grad=True), torch.rand(2, 3, 16, 16),
                                       torch.full((2, 16, 16), 13)),
}


class _Student(torch.nn.Module):
    """A 1x1-conv "segmentation network" returning a SegOutput (what MIC's term calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, C, 1)

    def forward(self, x):
        return uda.SegOutput(self.conv(x), None, {})


# Terms that call the student themselves take it first; their gradient reaches its parameters.
EXAMPLES["mic"] = lambda: (_Student(), torch.rand(2, 3, 16, 16), torch.randint(0, C, (2, 16, 16)), torch.ones(2, 16, 16))
# Factory arguments a loss needs (a frozen network for the feature distance, small blocks for MIC).
FACTORY = {"imnet_feature_distance": lambda: {"encoder": torch.nn.Conv2d(3, 4, 4, stride=4)},
           "mic": lambda: {"block": 4}}


@pytest.mark.parametrize("name", uda.list_components("loss"))
def test_every_registered_loss_runs_and_backpropagates(name):
    assert name in EXAMPLES, f"add an example input for the new loss {name!r} to EXAMPLES"
    loss_fn = uda.create("loss", name, **FACTORY.get(name, dict)())
    args = EXAMPLES[name]()
    out = loss_fn(*args)
    out = sum(out.values()) if isinstance(out, dict) else out  # a term's named losses
    assert torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in args[0].parameters()] if isinstance(args[0], torch.nn.Module) else [args[0].grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_identity_and_cycle_losses_zero_for_identical_images():
    x = torch.rand(2, 3, 8, 8)
    assert uda.create("loss", "cycle_l1")(x, x).item() == 0.0
    assert uda.create("loss", "identity_l1")(x, x).item() == 0.0
