"""Progress and logging: plain lines off a terminal with the learning rate, a one-time TensorBoard warning,
and a non-finite message that names the real cause of a random-init, frozen-BN divergence."""

from __future__ import annotations

import io
import json
import sys
import warnings

import pytest

import uda.engine.loggers as loggers
from uda._errors import NonFiniteLossError
from uda.engine import train


def test_plain_log_lines_with_lr_when_stderr_is_not_a_terminal(tmp_path, tiny, capsys):
    train(tiny("source_only_synthetic", "trainer.max_iters=2"), tmp_path)
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("uda: seg ")]
    assert [x.split()[2] for x in lines] == ["1/2", "2/2"]
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert all(" seg=" in x and f" lr={r['lr']:.2e}" in x for x, r in zip(lines, records))
    assert "seg:" not in err  # no tqdm bar of the stage


def test_progress_bar_on_a_terminal_shows_the_lr(tmp_path, tiny, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    train(tiny("source_only_synthetic", "trainer.max_iters=2"), tmp_path)
    text = stream.getvalue()
    assert "seg: 100%" in text and "lr=" in text and "uda: seg 1/2" not in text


def test_missing_tensorboard_warns_once(tmp_path, tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the import fails
    monkeypatch.setattr(loggers, "_WARNED", set())
    cfg = tiny("source_only_synthetic", "trainer.max_iters=1", "trainer.tensorboard=true")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(cfg, tmp_path / "a")
        train(cfg, tmp_path / "b")
    msgs = [str(w.message) for w in seen if "tensorboard" in str(w.message)]
    assert len(msgs) == 1 and "trainer.tensorboard=false" in msgs[0]


def _nan_from(at):
    def cb(tr):
        if tr.global_iter == at:
            orig = tr.recipe.seg_losses
            tr.recipe.seg_losses = lambda out, label: {k: v * float("nan") for k, v in orig(out, label).items()}
    return cb


@pytest.mark.parametrize("bn_mode", ["frozen", "train"])
def test_nonfinite_names_random_init_with_frozen_bn(tmp_path, tiny, bn_mode):
    cfg = tiny("source_only_synthetic", "trainer.max_iters=3", f"model.options.bn_mode={bn_mode}")
    assert cfg.model.pretrained is None
    with pytest.raises(NonFiniteLossError) as e:
        train(cfg, tmp_path, callbacks={"on_step_end": [_nan_from(1)]})
    msg = str(e.value)
    if bn_mode == "frozen":
        assert "model.pretrained=null" in msg and "bn_mode=moving" in msg and "lower the learning rate" not in msg
    else:
        assert "lower the learning rate" in msg and "bn_mode" not in msg
