"""The one loop: run directory, exact resume, SIGTERM, non-finite guard, checkpoint faults, callbacks."""

from __future__ import annotations

import errno
import json
import os
import signal

import pytest
import torch

import uda.engine.checkpoint as ckpt_mod
from uda._errors import CheckpointError, NonFiniteLossError, UdaError
from uda._io import load_checkpoint
from uda.engine import Trainer, TrainingInterrupted, load_latest_checkpoint, train
from uda.translators import translator_state_dict


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _model_state(run):
    return load_checkpoint(run / "checkpoints" / "last.pt")["recipe"]


def test_run_directory_contents(tmp_path, tiny):
    result = train(tiny("source_only_synthetic", "trainer.max_iters=2"), tmp_path)
    for name in ("config.yaml", "command.txt", "metrics.jsonl", "checkpoints/last.pt", "final.json"):
        assert (tmp_path / name).is_file(), name
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["miou"] == result["miou"] and "per_class" in final
    assert any((tmp_path / "pictures").glob("predictions_*.png"))
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == [1, 2]
    assert "miou" in records[-1]["eval"]


@pytest.mark.parametrize("name", ["adaptsegnet_synthetic", "mlfa_synthetic"])
def test_resume_is_bit_exact(tmp_path, name, tiny):
    # mlfa: 2 translator iterations + 4 seg iterations; the interruption falls inside the seg stage.
    over = ("trainer.max_iters=4", "trainer.checkpoint_every=100", "optim.generator.total_iters=50",
            "optim.discriminator.total_iters=50")
    straight, parted = tmp_path / "a", tmp_path / "b"
    train(tiny(name, *over), straight)

    def stop_at_3(tr):
        if tr.global_iter == 3:
            tr._handle_signal(signal.SIGTERM, None)

    with pytest.raises(TrainingInterrupted, match="SIGTERM at iteration 3"):
        train(tiny(name, *over), parted, callbacks={"on_step_end": [stop_at_3]})
    train(tiny(name, *over), parted, resume=True)
    a, b = _model_state(straight), _model_state(parted)
    assert a.keys() == b.keys()
    for k in a:
        assert _same(a[k], b[k]), k
    assert _losses(straight) == _losses(parted)


def test_resume_with_larger_max_iters_equals_straight_run(tmp_path, tiny):
    over = ("trainer.checkpoint_every=100", "optim.generator.total_iters=50")
    train(tiny("source_only_synthetic", "trainer.max_iters=4", *over), tmp_path / "a")
    train(tiny("source_only_synthetic", "trainer.max_iters=2", *over), tmp_path / "b")
    train(tiny("source_only_synthetic", "trainer.max_iters=4", *over), tmp_path / "b", resume=True)
    a, b = _model_state(tmp_path / "a"), _model_state(tmp_path / "b")
    assert _same(a, b)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_sigterm_real_signal_saves_and_exits(tmp_path, tiny):
    def kill_self(tr):
        if tr.global_iter == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="SIGTERM"):
        train(tiny("source_only_synthetic", "trainer.max_iters=5", "trainer.checkpoint_every=100"), tmp_path,
              callbacks={"on_step_end": [kill_self]})
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["global_iter"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    assert not (tmp_path / "final.json").exists()


def _inject_nan(at: int):
    def cb(tr):
        if tr.global_iter == at:
            orig = tr.recipe.seg_losses

            def bad(out, label):
                losses = orig(out, label)
                losses["seg"] = losses["seg"] * float("nan")
                return losses

            tr.recipe.seg_losses = bad
    return cb


def test_nonfinite_stop_names_iteration_loss_and_checkpoint(tmp_path, tiny):
    cfg = tiny("source_only_synthetic", "trainer.max_iters=6", "trainer.checkpoint_every=2")
    with pytest.raises(NonFiniteLossError) as e:
        train(cfg, tmp_path, callbacks={"on_step_end": [_inject_nan(3)]})
    msg = str(e.value)
    assert "iteration 4" in msg and "'seg'" in msg and "iter_0000002.pt" in msg
    for f in (tmp_path / "checkpoints").glob("*.pt"):
        state = load_checkpoint(f)
        assert all(torch.isfinite(v).all() for v in state["recipe"].values()
                   if isinstance(v, torch.Tensor) and v.is_floating_point())


def test_nonfinite_skip_counts_and_keeps_weights_finite(tmp_path, tiny):
    cfg = tiny("source_only_synthetic", "trainer.max_iters=4", "trainer.nonfinite=skip")
    train(cfg, tmp_path, callbacks={"on_step_end": [_inject_nan(2)]})
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [r["skipped"] for r in records] == [0, 0, 1, 2]
    state = _model_state(tmp_path)
    assert all(torch.isfinite(v).all() for v in state.values() if isinstance(v, torch.Tensor) and v.is_floating_point())


def test_corrupt_checkpoints_fall_back_to_previous(tmp_path, tiny):
    train(tiny("source_only_synthetic", "trainer.max_iters=4", "trainer.checkpoint_every=2"), tmp_path)
    ck = tmp_path / "checkpoints"
    for name in ("iter_0000004.pt", "last.pt"):
        data = (ck / name).read_bytes()
        (ck / name).write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="iter_0000004.pt"):
        state, path = load_latest_checkpoint(ck)
    assert path.name == "iter_0000002.pt" and state["global_iter"] == 2
    # the resumed run continues from iteration 2 and reaches the end
    with pytest.warns(UserWarning):
        train(tiny("source_only_synthetic", "trainer.max_iters=4", "trainer.checkpoint_every=2"), tmp_path,
              resume=True)
    assert load_checkpoint(ck / "last.pt")["global_iter"] == 4
    (ck / "iter_0000002.pt").write_bytes(b"garbage")
    for name in ("iter_0000004.pt", "last.pt"):
        (ck / name).write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match=r"iter_0000002\.pt"):
        load_latest_checkpoint(ck)


def test_unwritable_out_dir_fails_before_training(tmp_path, tiny):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    built = []
    with pytest.raises(UdaError, match="not writable"):
        tr = Trainer(tiny("source_only_synthetic", "trainer.max_iters=2"), blocker / "run")
        tr.add_callback("on_train_start", lambda t: built.append(1))
        tr.fit()
    assert not built


def test_checkpoint_write_failure_keeps_last_good(tmp_path, monkeypatch, tiny):
    real = ckpt_mod.save_checkpoint
    calls = []

    def flaky(obj, path):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path)

    monkeypatch.setattr(ckpt_mod, "save_checkpoint", flaky)
    with pytest.raises(UdaError, match=r"iter_0000002\.pt.*intact"):
        train(tiny("source_only_synthetic", "trainer.max_iters=6", "trainer.checkpoint_every=2"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["global_iter"] == 2
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_elastic_restart_resumes_automatically(tmp_path, monkeypatch, tiny):
    cfg = tiny("source_only_synthetic", "trainer.max_iters=2")
    train(cfg, tmp_path)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    tr = Trainer(tiny("source_only_synthetic", "trainer.max_iters=3"), tmp_path)
    tr.build()
    assert tr.global_iter == 2


def test_grad_accum_consumes_micro_batches_and_callbacks_fire(tmp_path, tiny):
    events = []
    tr = Trainer(tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.grad_accum=3"), tmp_path)
    for ev in ("on_train_start", "on_stage_start", "on_step_end", "on_checkpoint", "on_eval_end", "on_train_end"):
        tr.add_callback(ev, lambda t, ev=ev: events.append(ev))
    tr.fit()
    assert tr.source_iter.state_dict()["iteration"] == 6 and tr.target_iter.state_dict()["iteration"] == 6
    assert events[:2] == ["on_train_start", "on_stage_start"] and events.count("on_step_end") == 2
    assert events[-1] == "on_train_end"
    with pytest.raises(UdaError, match="unknown callback"):
        tr.add_callback("on_nothing", print)


def test_translator_checkpoint_skips_stage_one(tmp_path, tiny):
    first = tmp_path / "first"
    train(tiny("cyclegan_synthetic", "trainer.max_iters=1", "recipe.translator_iters=1"), first)
    tr = Trainer(tiny("mlfa_synthetic", "trainer.max_iters=1",
                      f"recipe.translator_checkpoint={first / 'checkpoints' / 'last.pt'}"), tmp_path / "second")
    tr.build()
    assert [s.name for s in tr.stages] == ["seg"]
    want = translator_state_dict(load_checkpoint(first / "checkpoints" / "last.pt"))
    got = tr.recipe.translator.state_dict()
    assert all(torch.equal(got[k].cpu(), want[k]) for k in want if isinstance(want[k], torch.Tensor))
