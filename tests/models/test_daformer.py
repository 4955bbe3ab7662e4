"""DAFormer: the same function as the original network (an independent functional forward from a state dict in
the original mmseg layout), the released-checkpoint layouts, LayerNorm eps, parameter groups."""

from __future__ import annotations

import pytest
import torch
from _daformer_reference import daformer_forward, mit_forward, mmseg_spec, normalize, random_state_dict

import uda
from uda._errors import CheckpointError, UdaError
from uda.models import load_weights
from uda.models.daformer import DAFormerHead


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _save(tmp_path, obj, name="w.pth"):
    p = tmp_path / name
    torch.save(obj, p)
    return p


@pytest.mark.parametrize(
    ("name", "variant", "embed", "size"),
    [("daformer_tiny", "tiny", 32, (64, 96)), ("daformer_mitb0", "mit_b0", 256, (64, 64))],
)
def test_bare_mmseg_layout_same_function(tmp_path, name, variant, embed, size):
    sd = random_state_dict(mmseg_spec(variant, 5, embed), seed=1)
    m = uda.create("model", name, num_classes=5, pretrained=str(_save(tmp_path, sd))).eval()
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = daformer_forward(sd, x, variant)
        out = m(x).logits
    assert out.shape == ref.shape == (2, 5, size[0] // 4, size[1] // 4)
    assert _rel_err(out, ref) < 1e-4


@pytest.mark.slow
def test_mitb5_same_function(tmp_path):
    sd = random_state_dict(mmseg_spec("mit_b5", 19, 256), seed=2)
    m = uda.create("model", "daformer_mitb5", num_classes=19, pretrained=str(_save(tmp_path, sd))).eval()
    assert sum(p.numel() for p in m.parameters()) == sum(
        v.numel() for k, v in sd.items() if v.dim() and "running" not in k
    )
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = daformer_forward(sd, x, "mit_b5")
        out = m(x)
    assert _rel_err(out.logits, ref) < 1e-4
    assert [out.features[f"stage{i}"].shape[1] for i in range(1, 5)] == [64, 128, 320, 512]


def test_released_checkpoint_student_and_teacher(tmp_path):
    student = random_state_dict(mmseg_spec("tiny", 4, 32), seed=3)
    teacher = random_state_dict(mmseg_spec("tiny", 4, 32), seed=4)
    imnet = {k: v for k, v in random_state_dict(mmseg_spec("tiny", 4, 32), seed=5).items() if k.startswith("backbone")}
    state = {f"model.{k}": v for k, v in student.items()} | {f"ema_model.{k}": v for k, v in teacher.items()}
    state |= {f"imnet_model.{k}": v for k, v in imnet.items()}
    path = str(_save(tmp_path, {"meta": {"iter": 40000}, "state_dict": state}))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for key, sd in (("model", student), ("ema_model", teacher)):
        m = uda.create("model", "daformer_tiny", num_classes=4, pretrained=path, pretrained_key=key).eval()
        with torch.no_grad():
            assert _rel_err(m(x).logits, daformer_forward(sd, x, "tiny")) < 1e-4, key
    m = uda.create("model", "daformer_tiny", num_classes=4)
    assert load_weights(m, path).layout == "daformer_release"
    with pytest.raises(CheckpointError, match="pretrained_key='model'"):
        uda.create("model", "daformer_tiny", num_classes=4, pretrained=path, pretrained_key="teacher")


def test_segformer_imagenet_init_loads_encoder_only(tmp_path):
    enc = {
        k[len("backbone.") :]: v
        for k, v in random_state_dict(mmseg_spec("tiny", 4, 32), seed=6).items()
        if k.startswith("backbone.")
    }
    enc |= {"head.weight": torch.randn(1000, 64), "head.bias": torch.randn(1000)}
    torch.manual_seed(0)
    m = uda.create("model", "daformer_tiny", num_classes=4)
    head_before = {k: v.clone() for k, v in m.head.state_dict().items()}
    rep = load_weights(m, _save(tmp_path, enc, "mit_b5.pth"))
    assert rep.layout == "backbone" and rep.normalization == "imagenet"
    assert rep.loaded == len(enc) - 2 and rep.missing == [
        k for k in m.state_dict() if k.startswith("head.") and not k.endswith("num_batches_tracked")
    ]
    assert all(torch.equal(v, m.head.state_dict()[k]) for k, v in head_before.items())
    x = torch.rand(1, 3, 64, 64)
    m.eval()
    with torch.no_grad():
        ref = mit_forward({"backbone." + k: v for k, v in enc.items()}, normalize(x), "tiny")
        got = m(x).features
    assert all(_rel_err(got[f"stage{i + 1}"], r) < 1e-4 for i, r in enumerate(ref))


def test_missing_file_says_where_to_get_weights(tmp_path):
    with pytest.raises(CheckpointError, match="lhoyer/DAFormer"):
        uda.create("model", "daformer_mitb0", num_classes=19, pretrained=str(tmp_path / "nope.pth"))


def test_class_count_mismatch_is_clear(tmp_path):
    sd = random_state_dict(mmseg_spec("tiny", 19, 32), seed=7)
    with pytest.raises(CheckpointError, match="num_classes=19"):
        uda.create("model", "daformer_tiny", num_classes=16, pretrained=str(_save(tmp_path, sd)))


def test_layernorm_eps_as_segformer():
    m = uda.create("model", "daformer_mitb0", num_classes=19)
    eps = {n: mod.eps for n, mod in m.encoder.named_modules() if isinstance(mod, torch.nn.LayerNorm)}
    assert eps["patch_embed1.norm"] == eps["block1.0.attn.norm"] == 1e-5
    assert eps["block1.0.norm1"] == eps["block4.1.norm2"] == eps["norm1"] == eps["norm4"] == 1e-6
    assert sum(v == 1e-5 for v in eps.values()) == 4 + 6  # 4 patch embeddings + sr norms of stages 1-3 (2 blocks)
    assert "block4.0.attn.norm" not in eps  # stage 4 has no spatial reduction


def test_param_groups_no_decay_on_norms():
    m = uda.create("model", "daformer_tiny", num_classes=3)
    groups = m.param_groups(6e-5, 10.0, weight_decay=0.01)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"backbone", "backbone_no_decay", "heads"}
    names = {id(p): n for n, p in m.named_parameters()}
    assert all("norm" in names[id(p)] for p in by_name["backbone_no_decay"]["params"])
    assert by_name["backbone_no_decay"]["weight_decay"] == 0.0 and by_name["backbone"]["weight_decay"] == 0.01
    n_norm = sum("norm" in n for n in names.values())
    assert (
        len(by_name["backbone_no_decay"]["params"]) == n_norm == 4 * 2 + 4 * 2 * 2 + 3 * 2 + 4 * 2
    )  # embeds, blocks, sr, stages
    assert by_name["heads"]["lr"] == pytest.approx(6e-4) and by_name["heads"]["weight_decay"] == 0.01
    opt = torch.optim.AdamW(groups, lr=6e-5, weight_decay=0.01)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.01, 0.01]


def test_head_interface_and_errors():
    head = DAFormerHead(in_channels=[8, 16, 32, 64], num_classes=3, embed_dim=16)
    feats = [torch.rand(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([8, 16, 32, 64])]
    assert head(feats).shape == (2, 3, 16, 16)
    assert head.fuse(feats).shape == (2, 16, 16, 16)
    with pytest.raises(UdaError, match="expects 4 feature levels"):
        head(feats[:3])
    with pytest.raises(UdaError, match="fusion"):
        DAFormerHead(in_channels=[8], num_classes=3, fusion="mlp")
    with pytest.raises(UdaError, match="too small"):
        uda.create("model", "daformer_tiny", num_classes=3)(torch.rand(1, 3, 16, 16))


def test_activation_checkpointing_same_gradients():
    torch.manual_seed(0)
    a = uda.create("model", "daformer_tiny", num_classes=3, dropout=0.0)
    b = uda.create("model", "daformer_tiny", num_classes=3, dropout=0.0, activation_checkpointing=True)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 64, 64)
    for m in (a, b):
        m.zero_grad()
        m(x).logits.square().mean().backward()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-5), n
    with torch.no_grad():  # no recomputation without gradients
        assert torch.equal(a(x).logits, b(x).logits)
    h = uda.create("model", "hrda_tiny", num_classes=3, activation_checkpointing=True)
    assert h.base.activation_checkpointing
