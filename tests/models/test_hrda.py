"""HRDA: the same function as the original multi-resolution network under the same weights (an independent
functional forward from a state dict in the released mmseg layout), crop boxes, attention mask, outputs."""

from __future__ import annotations

import pytest
import torch
from _daformer_reference import hrda_forward, mmseg_spec, random_state_dict

import uda
from uda._errors import CheckpointError, UdaError
from uda.evaluation.inference import infer
from uda.models import HRDAOutput, load_weights


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A released-style HRDA checkpoint (tiny MiT) with distinct student and teacher weights."""
    student = random_state_dict(mmseg_spec("tiny", 4, 32, hrda=True), seed=11)
    teacher = random_state_dict(mmseg_spec("tiny", 4, 32, hrda=True), seed=12)
    state = {f"model.{k}": v for k, v in student.items()} | {f"ema_model.{k}": v for k, v in teacher.items()}
    path = tmp_path_factory.mktemp("hrda") / "hrda.pth"
    torch.save({"meta": {"iter": 40000}, "state_dict": state}, path)
    return str(path), student, teacher


@pytest.mark.parametrize("key", ["model", "ema_model"])
def test_detail_crop_forward_same_function(released, key):
    path, student, teacher = released
    sd = student if key == "model" else teacher
    m = uda.create("model", "hrda_tiny", num_classes=4, pretrained=path, pretrained_key=key).eval()
    x = torch.rand(2, 3, 128, 96, generator=torch.Generator().manual_seed(0))
    box = (40, 72, 24, 56)
    with torch.no_grad():
        out = m(x, detail_box=box)
        ref = hrda_forward(sd, x, "tiny", box=box)
    assert isinstance(out, HRDAOutput) and isinstance(out, uda.SegOutput)
    assert out.logits.shape == ref.shape == (2, 4, 32, 24)
    assert _rel_err(out.logits, ref) < 1e-4
    assert out.detail_box == box and out.detail_logits.shape == (2, 4, 8, 8)
    assert out.context_logits.shape == out.attention.shape == (2, 4, 16, 12)


def test_sliding_window_inference_same_function(released):
    path, student, _ = released
    m = uda.create("model", "hrda_tiny", num_classes=4, pretrained=path).eval()
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = m(x)
        ref = hrda_forward(sd=student, x01=x, variant="tiny", box=None, hr_crop=32)
    assert out.detail_box is None and out.detail_logits is None
    assert _rel_err(out.logits, ref) < 1e-4
    # the evaluation's outer sliding window reuses the model as is (one window = the whole input here)
    from uda.config import EvalConfig

    cfg = EvalConfig(mode="slide", size=None, crop="128x96", stride="64x48")
    with torch.no_grad():
        logits = infer(m, x, cfg)
    up = torch.nn.functional.interpolate(out.logits, size=(96, 128), mode="bilinear", align_corners=True)
    assert logits.shape == (1, 4, 96, 128) and torch.allclose(logits, up, atol=1e-5)


def test_load_layout_and_bare_mmseg(released, tmp_path):
    path, student, _ = released
    assert load_weights(uda.create("model", "hrda_tiny", num_classes=4), path).layout == "hrda_release"
    bare = tmp_path / "bare.pth"
    torch.save(student, bare)
    m = uda.create("model", "hrda_tiny", num_classes=4)
    assert load_weights(m, bare).layout == "mmseg_hrda"
    own = m.state_dict()
    assert torch.equal(
        own["scale_attention.fuse_layer.conv.weight"], student["decode_head.scale_attention.fuse_layer.conv.weight"]
    )
    assert torch.equal(own["base.head.conv_seg.weight"], student["decode_head.head.conv_seg.weight"])
    assert torch.equal(own["base.encoder.block4.0.attn.kv.weight"], student["backbone.block4.0.attn.kv.weight"])


def test_train_mode_random_box_and_attention_mask():
    m = uda.create("model", "hrda_tiny", num_classes=3)
    x = torch.rand(2, 3, 128, 128)
    boxes = set()
    for seed in range(6):
        torch.manual_seed(seed)
        out = m(x)
        y0, y1, x0, x1 = out.detail_box
        assert y1 - y0 == x1 - x0 == 32 and all(v % 8 == 0 for v in out.detail_box)
        assert y0 >= 0 and y1 <= 128 and x0 >= 0 and x1 <= 128
        att = out.attention
        inside = torch.zeros_like(att, dtype=torch.bool)
        inside[:, :, y0 // 8 : y1 // 8, x0 // 8 : x1 // 8] = True
        assert (att[~inside] == 0).all() and (att[inside] > 0).all()
        boxes.add(out.detail_box)
        torch.manual_seed(seed)
        assert m(x).detail_box == out.detail_box  # torch's global RNG drives the crop
    assert len(boxes) >= 3
    # the detail loss reaches the shared weights
    m.zero_grad()
    out.detail_logits.square().mean().backward()
    assert m.base.encoder.patch_embed1.proj.weight.grad is not None


def test_generic_base_and_errors():
    m = uda.create("model", "hrda", base="daformer_tiny", num_classes=5, detail_size=32)
    assert m.output_stride == 4 and m.crop_divisible == 8
    assert [g["name"] for g in m.param_groups(1e-3)] == ["backbone", "heads"]
    n_heads = sum(p.numel() for p in m.base.head.parameters()) + sum(p.numel() for p in m.scale_attention.parameters())
    assert sum(p.numel() for p in m.param_groups(1e-3)[1]["params"]) == n_heads
    with pytest.raises(UdaError, match="divisible by 8"):
        m(torch.rand(1, 3, 64, 64), detail_box=(4, 36, 0, 32))
    with pytest.raises(UdaError, match="multiples of 8"):
        m(torch.rand(1, 3, 68, 64))
    with pytest.raises(UdaError, match="multiple of 8"):
        uda.create("model", "hrda", base="daformer_tiny", num_classes=5, detail_size=36)


def test_other_base_model_deeplabv2():
    m = uda.create("model", "hrda", base="deeplabv2_tiny", num_classes=5, detail_size=32)
    assert m.crop_divisible == 16 and m.attention_levels == ["layer1", "layer2", "layer3", "layer4"]
    out = m(torch.rand(2, 3, 64, 64))
    assert out.logits.shape == (2, 5, 8, 8) and out.aux is None
    (out.logits.square().mean() + 0.1 * out.detail_logits.square().mean()).backward()
    assert all(p.grad is not None for p in m.scale_attention.parameters())
    assert m.eval()(torch.rand(1, 3, 64, 96)).logits.shape == (1, 5, 8, 12)


def test_param_groups_no_decay_include_attention_head():
    m = uda.create("model", "hrda_tiny", num_classes=3)
    groups = {g["name"]: g for g in m.param_groups(6e-5, weight_decay=0.01)}
    assert set(groups) == {"backbone", "backbone_no_decay", "heads"}
    ids = {id(p) for p in groups["heads"]["params"]}
    assert all(id(p) in ids for p in m.scale_attention.parameters())
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0


@pytest.mark.slow
def test_hrda_mitb5_same_function(tmp_path):
    sd = random_state_dict(mmseg_spec("mit_b5", 19, 256, hrda=True), seed=13)
    path = tmp_path / "hrda_b5.pth"
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}}, path)
    m = uda.create("model", "hrda", base="daformer_mitb5", num_classes=19, detail_size=32, pretrained=str(path))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = m.eval()(x, detail_box=(8, 40, 24, 56))
        ref = hrda_forward(sd, x, "mit_b5", box=(8, 40, 24, 56))
    assert _rel_err(out.logits, ref) < 1e-4


def test_own_checkpoint_round_trip_and_autocast(tmp_path):
    from uda.models import save_weights

    torch.manual_seed(0)
    a = uda.create("model", "hrda_tiny", num_classes=3).eval()
    a.set_normalization("half")
    save_weights(a, tmp_path / "h.pt")
    b = uda.create("model", "hrda_tiny", num_classes=3)
    rep = load_weights(b, tmp_path / "h.pt")
    assert rep.layout == "uda" and b.normalization == a.normalization
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a(x).logits, b.eval()(x).logits)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = b(x).logits
    assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), a(x).logits, atol=0.1, rtol=0.1)


def test_daformer_checkpoint_into_hrda(tmp_path):
    from _daformer_reference import daformer_forward

    sd = random_state_dict(mmseg_spec("tiny", 4, 32), seed=14)
    path = tmp_path / "daformer.pth"
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}}, path)
    with pytest.raises(CheckpointError, match="missing scale_attention"):
        uda.create("model", "hrda_tiny", num_classes=4, pretrained=str(path))
    m = uda.create("model", "hrda_tiny", num_classes=4)
    rep = load_weights(m, path, strict=False)
    assert rep.layout == "hrda_release" and all(k.startswith("scale_attention.") for k in rep.missing)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(m.base.eval()(x).logits, daformer_forward(sd, x, "tiny"), atol=1e-5)
