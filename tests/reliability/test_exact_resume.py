"""Bit-exact resume including every RNG stream, interrupted inside the translator stage and inside the seg stage.

An augmented CycleGAN run (random crops in stage 1, kornia augmentation in stage 2, a mid-run evaluation) is
interrupted (the SIGTERM path: checkpoint, then `TrainingInterrupted`) and resumed; the whole last checkpoint
(every tensor, the RNG states, the loader positions) and every loss logged after the interruption equal the
uninterrupted run's.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from uda._io import load_checkpoint
from uda.config import load_config
from uda.engine import TrainingInterrupted, train

from .conftest import logged, same, tiny_config

TRANSLATOR, SEG = 4, 4
OVER = ("data.augmentation=standard", f"recipe.translator_iters={TRANSLATOR}", f"trainer.max_iters={SEG}",
        "trainer.checkpoint_every=100", "trainer.eval_every=2", "trainer.keep_last=10", "recipe.translator_crop=32x32",
        *(f"{k}=64x32" for k in ("data.source.size", "data.target.size", "data.val.size", "eval.size")))


def _cfg():
    return tiny_config("cyclegan_synthetic", *OVER)


def _interrupt_at(k: int):
    def fn(trainer) -> None:
        if trainer.global_iter == k:
            trainer.signal = signal.SIGTERM
    return fn


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, torch.Tensor):
        return [] if isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b) else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path} keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _diff(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("straight") / "run"
        train(_cfg(), out)
    finally:
        torch.set_num_threads(n)
    return out


@pytest.mark.parametrize("at", [2, TRANSLATOR + 1], ids=["translator_stage", "seg_stage"])
def test_interrupted_run_equals_straight_run(straight: Path, tmp_path: Path, at: int) -> None:
    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(_cfg(), out, callbacks={"on_step_end": [_interrupt_at(at)]})
    train(_cfg(), out, resume=True)
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(out / "checkpoints" / "last.pt")
    assert _diff(a, b) == []
    assert len(a["rng"]) == 1 and a["rng"][0]["torch"].numel() > 0 and same(a["rng"], b["rng"])
    def after(run: Path) -> list[tuple]:
        return [(r["stage"], r["global_iter"], r["loss"], r["loss_d"], r["lr"]) for r in logged(run)
                if "loss" in r and r["global_iter"] > at]

    assert after(out) == after(straight) and len(after(out)) == TRANSLATOR + SEG - at


def test_evaluation_and_loaders_leave_the_global_generator_alone(tmp_path: Path) -> None:
    from uda.data import InfiniteLoader, build_dataset
    from uda.evaluation import evaluate

    cfg = load_config("source_only_synthetic", ["data.val.options.num=2", "data.val.size=32x16", "eval.size=32x16",
                                                "model.options.width=4"])
    ds = build_dataset(cfg.data.val, labels=True)
    model = __import__("uda").create("model", "deeplabv2_tiny", num_classes=19, width=4)
    torch.manual_seed(1)
    before = torch.get_rng_state()
    evaluate(model, ds, cfg.eval, device="cpu")
    next(InfiniteLoader(ds, batch_size=1, seed=0))
    assert torch.equal(torch.get_rng_state(), before)


def test_checkpoint_holds_the_translator_once_and_no_dead_pools(straight: Path, tmp_path: Path) -> None:
    from uda.translators import translator_state_dict

    last = load_checkpoint(straight / "checkpoints" / "last.pt")
    assert last["stage_name"] == "seg" and "translator" not in last
    assert last["recipe"]["translator.pool_t._extra_state"]["images"] == []  # dropped after stage 1
    assert all(o["state"] == {} for o in last["optimizers"]["translator"].values())  # and the stage's Adam moments
    assert translator_state_dict(last)["g_st.net.1.weight"] is last["recipe"]["translator.g_st.net.1.weight"]
    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(_cfg(), out, callbacks={"on_step_end": [_interrupt_at(2)]})
    mid = load_checkpoint(out / "checkpoints" / "last.pt")
    images = mid["recipe"]["translator.pool_t._extra_state"]["images"]
    assert mid["stage_name"] == "translator" and len(images) == 4 and images[0].dtype == torch.uint8
