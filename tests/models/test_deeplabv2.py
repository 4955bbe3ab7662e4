"""DeepLab-v2: parameter counts, output sizes, equivalence with the original network, BN modes, param groups."""

from __future__ import annotations

import pytest
import torch
from _deeplab_reference import original_state_dict, reference_forward

import uda
from uda.models import DeepLabV2, load_weights

SMALL = (2, 1, 2, 1)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    a, b = a.detach(), b.detach()
    return a.shape == b.shape and float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize(("multi_level", "count"), [(True, 44_601_560), (False, 43_901_068)])
def test_full_size_param_count_and_output_size(multi_level, count):
    m = uda.create("model", "deeplabv2", num_classes=19, multi_level=multi_level)
    assert sum(p.numel() for p in m.parameters()) == count
    m = m.to("meta")  # shapes of a 1280×720 forward without computing it
    out = m(torch.empty(1, 3, 720, 1280, device="meta"))
    assert out.logits.shape == (1, 19, 91, 161)
    assert out.features["layer1"].shape[-2:] == (181, 321)
    assert out.features["layer3"].shape[1] == 1024 and out.features["layer4"].shape[1] == 2048
    assert (out.aux is not None) == multi_level
    out = m(torch.empty(1, 3, 512, 1024, device="meta"))
    assert out.logits.shape[-2:] == (65, 129)
    assert m(torch.empty(1, 3, 760, 1280, device="meta")).logits.shape[-2:] == (96, 161)


def test_full_size_forward_small_input():
    m = uda.create("model", "deeplabv2", num_classes=19).eval()
    with torch.no_grad():
        out = m(torch.rand(1, 3, 65, 65))
    assert out.logits.shape == (1, 19, 9, 9) and out.aux.shape == (1, 19, 9, 9)
    assert m.feature_info["layer4"] == uda.LevelInfo(2048, 8) and m.feature_info["layer1"] == uda.LevelInfo(256, 4)


def test_caffe_structure():
    m = DeepLabV2(3, layers=SMALL, width=8)
    b = m.backbone
    assert b.maxpool.ceil_mode and b.conv1.bias is None and b.conv1.stride == (2, 2)
    first = b.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)  # stride on the 1×1, not the 3×3
    for layer, d in ((b.layer3, 2), (b.layer4, 4)):
        for block in layer:  # every block dilated, padding = dilation
            assert block.conv2.dilation == (d, d) and block.conv2.padding == (d, d) and block.conv1.stride == (1, 1)
    assert all(layer[0].downsample is not None for layer in (b.layer1, b.layer2, b.layer3, b.layer4))
    assert [c.dilation[0] for c in m.head.branches] == [6, 12, 18, 24]
    assert all(c.bias is not None for c in m.head.branches)
    w = torch.cat([c.weight.flatten() for c in DeepLabV2(19, layers=SMALL, width=16).head.branches])
    assert abs(float(w.detach().std()) - 0.01) < 0.001


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_equivalence_with_original_advent_layout(tmp_path, suffix):
    sd = original_state_dict(SMALL, 8, 3)
    path = tmp_path / f"advent{suffix}"
    if suffix == ".pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file(sd, str(path))
    m = DeepLabV2(3, layers=SMALL, width=8)
    report = load_weights(m, path)
    assert report.layout == "advent" and report.normalization == "caffe" and not report.missing
    x = torch.rand(2, 3, 65, 57, generator=torch.Generator().manual_seed(1))
    ref = reference_forward(sd, x, SMALL)
    out = m.eval()(x)
    assert _close(out.logits, ref["layer6"]) and _close(out.aux, ref["layer5"])
    for lv in ("layer1", "layer2", "layer3", "layer4"):
        assert _close(out.features[lv], ref[lv])


def test_equivalence_init_file_layout(tmp_path):
    """The DeepLab init file: keys prefixed, its own layer5 classifier (another dataset) skipped."""
    sd = original_state_dict(SMALL, 8, 21, heads=("layer5",))
    torch.save({"Scale." + k: v for k, v in sd.items()}, tmp_path / "init.pth")
    m = DeepLabV2(3, layers=SMALL, width=8, normalization="imagenet")
    head_before = m.head.branches[0].weight.clone()
    report = load_weights(m, tmp_path / "init.pth")
    assert report.layout == "deeplab_init" and report.normalization == "caffe"
    assert torch.equal(m.head.branches[0].weight, head_before)  # heads untouched (21-class layer5 skipped)
    x = torch.rand(1, 3, 49, 49)
    ref = reference_forward(sd, x, SMALL)
    feats = m.eval()(x).features
    assert _close(feats["layer4"], ref["layer4"]) and _close(feats["layer3"], ref["layer3"])


def test_single_level_advent_checkpoint(tmp_path):
    sd = original_state_dict(SMALL, 8, 3, heads=("layer6",))
    torch.save(sd, tmp_path / "single.pth")
    m = DeepLabV2(3, layers=SMALL, width=8, multi_level=False)
    load_weights(m, tmp_path / "single.pth")
    x = torch.rand(1, 3, 40, 40)
    out = m.eval()(x)
    assert out.aux is None and _close(out.logits, reference_forward(sd, x, SMALL)["layer6"])


def test_torchvision_layout_switches_to_imagenet_normalization(tmp_path):
    sd = original_state_dict(SMALL, 8, 3, heads=())
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(1000, 256), torch.zeros(1000)
    torch.save(sd, tmp_path / "tv.pth")
    m = DeepLabV2(3, layers=SMALL, width=8)
    report = load_weights(m, tmp_path / "tv.pth")
    assert report.layout == "torchvision" and report.normalization == "imagenet"
    assert m.normalization == uda.models.Normalization.named("imagenet")
    x = torch.rand(1, 3, 33, 33)
    assert _close(m.eval()(x).features["layer4"], reference_forward(sd, x, SMALL, caffe=False)["layer4"])


def test_pretrained_factory_argument(tmp_path):
    torch.save(original_state_dict((1, 1, 1, 1), 16, 5), tmp_path / "w.pth")
    m = uda.create("model", "deeplabv2_tiny", num_classes=5, pretrained=str(tmp_path / "w.pth"))
    assert m.normalization.bgr  # caffe layout → caffe normalization
    m = uda.create("model", "deeplabv2_tiny", num_classes=5, pretrained=str(tmp_path / "w.pth"), normalization="half")
    assert m.normalization == uda.models.Normalization.named("half")  # an explicit choice wins


def _bn_stats(m):
    return torch.cat([b.running_mean for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]).clone()


@pytest.mark.parametrize(
    ("mode", "stats_move", "affine_trainable"),
    [("frozen", False, False), ("moving", True, False), ("train", True, True)],
)
def test_bn_modes(mode, stats_move, affine_trainable):
    m = DeepLabV2(3, layers=SMALL, width=8, bn_mode=mode).train()
    before = _bn_stats(m)
    m(torch.rand(2, 3, 33, 33)).logits.sum().backward()
    assert (not torch.equal(before, _bn_stats(m))) == stats_move
    bn = m.backbone.layer3[0].bn2
    assert bn.weight.requires_grad == affine_trainable and bn.bias.requires_grad == affine_trainable
    assert bn.training == (mode != "frozen")
    m.eval()
    assert not bn.training


def test_freeze_bn_alias():
    assert uda.create("model", "deeplabv2", layers=SMALL, freeze_bn=False).bn_mode == "moving"
    assert uda.create("model", "deeplabv2", layers=SMALL).bn_mode == "frozen"


def test_param_groups_heads_at_10x():
    m = DeepLabV2(3, layers=SMALL, width=8)
    groups = m.param_groups(lr=2.5e-4)
    assert [g["name"] for g in groups] == ["backbone", "heads"]
    assert groups[1]["lr"] == pytest.approx(2.5e-3)
    head_ids = {id(p) for p in list(m.head.parameters()) + list(m.aux_head.parameters())}
    assert {id(p) for p in groups[1]["params"]} == head_ids
    assert all(p.requires_grad for p in groups[0]["params"])
    # frozen BN affine parameters are in no group; every conv weight is in exactly one
    n_conv = sum(1 for mod in m.backbone.modules() if isinstance(mod, torch.nn.Conv2d))
    assert len(groups[0]["params"]) == n_conv


def test_bad_inputs():
    m = DeepLabV2(3, layers=SMALL, width=8)
    with pytest.raises(uda.UdaError, match="minimum is 8×8"):
        m(torch.rand(1, 3, 4, 64))
    with pytest.raises(uda.UdaError, match="has no feature level"):
        m.check_levels(["layer3", "layer9"])
    m.check_levels(["layer1", "layer4", "logits", "aux"])
    with pytest.raises(uda.UdaError, match="bn_mode"):
        DeepLabV2(3, layers=SMALL, bn_mode="half")
    with pytest.raises(uda.UdaError, match="layers"):
        DeepLabV2(3, layers=(1, 2, 3))


def test_autocast_and_channels_last():
    m = uda.create("model", "deeplabv2_tiny", num_classes=4).eval()
    x = torch.rand(1, 3, 64, 64)
    ref = m(x).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x).logits
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    m_cl = m.to(memory_format=torch.channels_last)
    out_cl = m_cl(x.contiguous(memory_format=torch.channels_last)).logits
    assert torch.allclose(out_cl, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("multi_level", "heads"), [(True, 16), (False, 8)])
def test_faithful_duplicate_params_exact_counts(multi_level, heads):
    """The originals' 1x list: 314 entries for 104 tensors (ResNet-101, frozen BN affine); heads once each."""
    from uda.config import OptimizerConfig, RecipeConfig
    from uda.recipes import Recipe

    m = uda.create("model", "deeplabv2", num_classes=19, multi_level=multi_level, bn_mode="moving")
    groups = Recipe(RecipeConfig(), m, num_classes=19).generator_param_groups(
        OptimizerConfig(faithful_duplicate_params=True))
    one_x, ten_x = groups[0]["params"], groups[1]["params"]
    # Independently of the rule's code: 33 blocks x 3 convs seen from stage, block and conv (3 times each),
    # 4 downsample convs seen from stage, block, Sequential and conv (4 times), the stem conv once.
    assert len(one_x) == 99 * 3 + 4 * 4 + 1 == 314
    assert len({id(p) for p in one_x}) == 104
    assert all(p.dim() == 4 for p in one_x)  # conv weights only: BN affine is frozen, the convs have no bias
    counts: dict[int, int] = {}
    for p in one_x:
        counts[id(p)] = counts.get(id(p), 0) + 1
    assert counts[id(m.backbone.conv1.weight)] == 1
    assert counts[id(m.backbone.layer3[7].conv2.weight)] == 3
    assert counts[id(m.backbone.layer1[0].downsample[0].weight)] == 4
    assert len(ten_x) == len({id(p) for p in ten_x}) == heads
    assert groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])


def test_faithful_duplicate_params_needs_the_deeplab_rule():
    from uda.models import duplicated_backbone_params

    with pytest.raises(uda.ConfigError, match="faithful_duplicate_params"):
        duplicated_backbone_params(torch.nn.Linear(2, 2))


def test_two_branch_classifier_matches_adaptsegnet_release(tmp_path):
    """AdaptSegNet's released classifier returns after its first two branches; classifier_branches=2 computes that."""
    import torch.nn.functional as F

    sd = original_state_dict(SMALL, 8, 3)
    path = tmp_path / "adaptsegnet.pth"
    torch.save(sd, path)
    m = DeepLabV2(3, layers=SMALL, width=8, classifier_branches=2)
    load_weights(m, path)
    x = torch.rand(1, 3, 65, 57, generator=torch.Generator().manual_seed(2))
    ref = reference_forward(sd, x, SMALL)

    def two(head: str, feat: torch.Tensor) -> torch.Tensor:
        return sum(F.conv2d(feat, sd[f"{head}.conv2d_list.{j}.weight"], sd[f"{head}.conv2d_list.{j}.bias"],
                            padding=d, dilation=d) for j, d in ((0, 6), (1, 12)))

    out = m.eval()(x)
    assert _close(out.logits, two("layer6", ref["layer4"])) and _close(out.aux, two("layer5", ref["layer3"]))
    assert not _close(out.logits, ref["layer6"])  # the four-branch sum differs
    full = DeepLabV2(3, layers=SMALL, width=8)
    load_weights(full, path)
    assert _close(full.eval()(x).logits, ref["layer6"])
    with pytest.raises(uda.UdaError, match="classifier_branches"):
        DeepLabV2(3, layers=SMALL, classifier_branches=5)
    tiny = uda.create("model", "deeplabv2_tiny", num_classes=3, classifier_branches=2)
    assert tiny.head.num_summed == tiny.aux_head.num_summed == 2
