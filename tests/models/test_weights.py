"""Weights from local files: our format, run checkpoints, safetensors, original layouts, error messages."""

from __future__ import annotations

import pytest
import torch
from _deeplab_reference import original_state_dict

import uda
from uda.models import DeepLabV2, Normalization, load_weights, save_weights

SMALL = (1, 1, 1, 1)


def _model(**kw):
    return DeepLabV2(3, layers=SMALL, width=8, **kw)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if isinstance(sa[k], torch.Tensor))


def test_own_format_roundtrip_and_normalization_travels(tmp_path):
    src = _model(normalization="imagenet")
    save_weights(src, tmp_path / "w.pt")
    assert (tmp_path / "w.pt.sha256").is_file()
    dst = _model()  # caffe by default
    report = load_weights(dst, tmp_path / "w.pt")
    assert report.layout == "uda" and report.loaded > 0 and not report.missing
    assert _same(src, dst) and dst.normalization == Normalization.named("imagenet")


def test_run_checkpoint_and_plain_state_dict_and_module_prefix(tmp_path):
    src = _model()
    torch.save({"model": src.state_dict(), "iteration": 5, "optimizer": {}}, tmp_path / "run.pt")
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, tmp_path / "ddp.pt")
    for name in ("run.pt", "ddp.pt"):
        dst = _model()
        assert load_weights(dst, tmp_path / name).layout == "uda" and _same(src, dst)


def test_state_dict_carries_normalization():
    src = _model(normalization="half")
    dst = _model()
    dst.load_state_dict(src.state_dict())
    assert dst.normalization == Normalization.named("half")


def test_safetensors_own_format(tmp_path):
    from safetensors.torch import save_file

    src = _model()
    save_file(
        {k: v for k, v in src.state_dict().items() if isinstance(v, torch.Tensor)}, str(tmp_path / "w.safetensors")
    )
    dst = _model()
    load_weights(dst, tmp_path / "w.safetensors")
    assert _same(src, dst)


def test_missing_file_names_file_and_source(tmp_path):
    with pytest.raises(
        uda.CheckpointError, match=r"nope\.pth: no such weights file.*DeepLab_resnet_pretrained_imagenet\.pth"
    ):
        load_weights(_model(), tmp_path / "nope.pth")


def test_class_count_mismatch_suggests_num_classes(tmp_path):
    torch.save(original_state_dict(SMALL, 8, 19), tmp_path / "advent.pth")
    with pytest.raises(
        uda.CheckpointError, match="has 19 classes but the model has 3; build the model with num_classes=19"
    ):
        load_weights(_model(), tmp_path / "advent.pth")
    save_weights(DeepLabV2(7, layers=SMALL, width=8), tmp_path / "own.pt")
    with pytest.raises(uda.CheckpointError, match="num_classes=7"):
        load_weights(_model(), tmp_path / "own.pt")


def test_shape_and_key_mismatch_listed(tmp_path):
    torch.save(original_state_dict((2, 2, 2, 2), 8, 3), tmp_path / "deeper.pth")
    with pytest.raises(uda.CheckpointError, match=r"unexpected backbone\.layer1\.1\.conv1\.weight.*in all\)"):
        load_weights(_model(), tmp_path / "deeper.pth")
    torch.save(original_state_dict(SMALL, 16, 3), tmp_path / "wider.pth")
    with pytest.raises(
        uda.CheckpointError, match=r"shape mismatch backbone\.conv1\.weight \(16, 3, 7, 7\)≠\(8, 3, 7, 7\)"
    ):
        load_weights(_model(), tmp_path / "wider.pth")
    # a multi-level checkpoint into a single-level model: the aux head is unexpected
    torch.save(original_state_dict(SMALL, 8, 3), tmp_path / "multi.pth")
    with pytest.raises(uda.CheckpointError, match="unexpected aux_head"):
        load_weights(_model(multi_level=False), tmp_path / "multi.pth")
    report = load_weights(_model(multi_level=False), tmp_path / "multi.pth", strict=False)
    assert len(report.skipped) == 8 and not report.missing


def test_non_strict_partial_and_incomplete(tmp_path):
    sd = original_state_dict(SMALL, 8, 3)
    del sd["layer4.0.conv3.weight"]
    torch.save(sd, tmp_path / "incomplete.pth")
    with pytest.raises(uda.CheckpointError, match=r"missing backbone\.layer4\.0\.conv3\.weight \(1\)"):
        load_weights(_model(), tmp_path / "incomplete.pth")
    report = load_weights(_model(), tmp_path / "incomplete.pth", strict=False)
    assert report.missing == ["backbone.layer4.0.conv3.weight"]


def test_unknown_layout_and_corrupt_file(tmp_path):
    torch.save({"foo.bar": torch.zeros(3)}, tmp_path / "odd.pth")
    with pytest.raises(uda.CheckpointError, match="unrecognised weights layout"):
        load_weights(_model(), tmp_path / "odd.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(uda.CheckpointError, match=r"bad\.pth"):
        load_weights(_model(), tmp_path / "bad.pth")
