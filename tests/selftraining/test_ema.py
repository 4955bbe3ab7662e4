import pytest
import torch
from torch import nn

import uda
from uda._errors import ConfigError
from uda.selftraining import EMATeacher, ema_alpha


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Dropout(0.5))


def test_alpha_sequence_exact():
    assert [ema_alpha(t, 0.99) for t in range(4)] == [0.0, 0.5, 1 - 1 / 3, 0.75]
    assert ema_alpha(99, 0.99) == pytest.approx(0.99)
    assert ema_alpha(49, 0.99) == pytest.approx(0.98)
    assert ema_alpha(10_000, 0.999) == 0.999


def test_parameters_after_updates_match_hand_computed():
    student = _net()
    teacher = uda.create("teacher", "ema", student=student, alpha=0.6)
    w0 = student[0].weight.detach().clone()
    expected = w0.clone()
    values = []
    for step in (1, 2, 3):
        with torch.no_grad():
            student[0].weight.fill_(float(step))  # a known student after optimizer step `step`
        a = teacher.update(student, step)
        values.append(a)
        a_ref = min(1 - 1 / (step + 1), 0.6)
        expected = a_ref * expected + (1 - a_ref) * float(step)
        torch.testing.assert_close(teacher.module[0].weight, expected)
    assert values == [0.5, 0.6, 0.6]
    # by hand: step 1 → 0.5 w0 + 0.5; step 2 → 0.6(0.5 w0 + 0.5) + 0.8; step 3 → 0.6(...) + 1.2
    torch.testing.assert_close(teacher.module[0].weight, 0.6 * (0.6 * (0.5 * w0 + 0.5) + 0.8) + 1.2)
    assert student[0].weight.requires_grad and not any(p.requires_grad for p in teacher.parameters())


def test_eval_mode_kept_and_forward_no_grad():
    student = _net()
    teacher = EMATeacher(student)
    teacher.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())
    x = torch.randn(2, 1, 4, 4, requires_grad=True)
    y = teacher(x)
    assert not y.requires_grad
    torch.testing.assert_close(teacher(x), y)  # dropout is off: deterministic


def test_buffers_modes():
    student = _net()
    with torch.no_grad():
        student[1].running_mean.fill_(2.0)
        student[1].num_batches_tracked.fill_(7)
    ema, cp, keep = (EMATeacher(_net(), alpha=0.9, buffers=b) for b in ("ema", "copy", "keep"))
    for t in (ema, cp, keep):
        t.update(student, 1)  # α_1 = 0.5; teacher running_mean starts at 0
    assert torch.equal(ema.module[1].running_mean, torch.full((2,), 1.0))
    assert torch.equal(cp.module[1].running_mean, torch.full((2,), 2.0))
    assert torch.equal(keep.module[1].running_mean, torch.zeros(2))
    assert all(int(t.module[1].num_batches_tracked) == 7 for t in (ema, cp, keep))


def test_state_dict_round_trip_and_bad_input():
    student = _net()
    teacher = EMATeacher(student, alpha=0.99)
    teacher.update(student, 5)
    other = EMATeacher(_net())
    other.load_state_dict(teacher.state_dict())
    torch.testing.assert_close(other.module[0].weight, teacher.module[0].weight)
    with pytest.raises(ConfigError, match="alpha"):
        EMATeacher(student, alpha=1.5)
    with pytest.raises(ConfigError, match="buffers"):
        EMATeacher(student, buffers="avg")
    with pytest.raises(ConfigError, match="student"):
        teacher.update(nn.Linear(1, 1), 2)


def test_dacs_convention_step_minus_one_copies_first():
    student = _net()
    teacher = EMATeacher(student, alpha=0.99)
    with torch.no_grad():
        student[0].weight.add_(3.0)
    assert teacher.update(student, 0) == 0.0  # DACS: first update after optimizer step 1, iteration index 0
    torch.testing.assert_close(teacher.module[0].weight, student[0].weight)


def test_the_teacher_is_an_ordinary_module():
    """`buffers=` is a constructor option only: `nn.Module.buffers()` stays callable on the teacher."""
    teacher = EMATeacher(_net(), alpha=0.9, buffers="copy")
    assert len(list(teacher.buffers())) == len(list(_net().buffers())) > 0


def test_batch_mode_normalises_with_the_batch_as_the_originals():
    """``buffers="batch"``: the original DACS/DAFormer teacher (train-mode BN, dropout off), running stats untouched."""
    student = _net()
    with torch.no_grad():
        student[1].running_mean.fill_(5.0)  # running statistics far from the batch's: eval mode would differ
        student[1].running_var.fill_(9.0)
    teacher = EMATeacher(student, alpha=0.9, buffers="batch")
    x = torch.randn(4, 1, 3, 3) * 2 + 1
    y = teacher(x)
    conv = teacher.module[0](x)
    mean, var = conv.mean((0, 2, 3), keepdim=True), conv.var((0, 2, 3), unbiased=False, keepdim=True)
    bn = teacher.module[1]
    expected = (conv - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(y, expected)  # by hand; dropout (p 0.5) is off
    torch.testing.assert_close(teacher(x), y)
    assert torch.equal(bn.running_mean, torch.full((2,), 5.0)) and int(bn.num_batches_tracked) == 0
    assert not bn.training and bn.track_running_stats  # restored after the forward
    assert not torch.allclose(EMATeacher(student, buffers="ema")(x), y)  # the running-statistics teacher differs
    with torch.no_grad():
        student[1].running_mean.fill_(-3.0)
    teacher.update(student, 1)
    assert torch.equal(bn.running_mean, torch.full((2,), 5.0))  # the update leaves unused buffers alone


def test_batch_mode_with_one_value_per_channel_is_one_clear_error():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(2))  # an image-pooling branch
    teacher = EMATeacher(net, buffers="batch")
    with pytest.raises(ConfigError, match="teacher_buffers=ema"):
        teacher(torch.randn(1, 1, 4, 4))
    assert teacher(torch.randn(2, 1, 4, 4)).shape == (2, 2, 1, 1)
    assert not teacher.module[2].training  # restored after the error too


def _ranks_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    result = {}
    for mode in ("ema", "copy", "keep", "batch"):
        student = _net()
        teacher = EMATeacher(student, alpha=0.6, buffers=mode)
        with torch.no_grad():
            student[1].running_mean.fill_(float(rank + 1))  # per-rank batch-norm statistics: 1 and 2
        teacher.update(student, 1)  # α_1 = 0.5
        result[mode] = teacher.module[1].running_mean.clone()
    torch.save(result, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_update_keeps_one_teacher_over_ranks(tmp_path):
    # Every user of the teacher (the dacs recipe, the MIC aligner's own teacher) gets the averaging from update().
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ranks_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # ema: rank r holds 0.5·0 + 0.5·(r + 1); averaged over the ranks: 0.75. copy: (1 + 2) / 2.
    for mode, value in (("ema", 0.75), ("copy", 1.5), ("keep", 0.0), ("batch", 0.0)):
        torch.testing.assert_close(r0[mode], torch.full((2,), value), msg=mode)
        torch.testing.assert_close(r1[mode], r0[mode], msg=mode)
