"""``trainer.amp=bf16`` on the CPU (autocast really entered), fp16 refused off CUDA, and
``trainer.sequential_backward`` giving the gradients of the joint backward."""

from __future__ import annotations

import pytest
import torch

from uda._errors import ConfigError
from uda.config import load_config
from uda.engine import Trainer, autocast_context, train

TINY = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=32x16", "eval.size=32x16",
        "data.source.options.num=4", "data.target.options.num=4", "data.val.options.num=1", "data.batch_size=1",
        "model.options.width=4", "trainer.tensorboard=false", "trainer.device=cpu", "trainer.eval_every=0",
        "trainer.checkpoint_every=1000", "trainer.max_iters=2"]


@pytest.mark.slow
def test_bf16_autocast_runs_on_the_cpu(tmp_path):
    seen = []

    def hook(tr):
        tr.model.register_forward_hook(lambda m, i, o: seen.append((torch.is_grad_enabled(), o.logits.dtype)))

    train(load_config("advent_synthetic", [*TINY, "trainer.amp=bf16"]), tmp_path / "run",
          callbacks={"on_train_start": [hook]})
    trained = [dtype for grad, dtype in seen if grad]
    assert len(trained) == 4 and set(trained) == {torch.bfloat16}  # 2 steps × (source, target) under autocast
    lines = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "NaN" not in lines and '"seg"' in lines


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer\.amp=fp16 needs a CUDA device"):
        Trainer(load_config("advent_synthetic", [*TINY, "trainer.amp=fp16"]), tmp_path / "run").build()
    with pytest.raises(ConfigError, match="not one of"):
        autocast_context("fp8", torch.device("cpu"))


def _params_after(tmp_path, extra):
    tr = Trainer(load_config("advent_synthetic", [*TINY, *extra]), tmp_path)
    tr.build()
    stage = tr.stages[-1]
    tr.set_modes(stage)
    for _ in range(2):
        tr.train_step(stage)
    return {k: p.detach().clone() for k, p in tr.recipe.named_parameters()}, tr


@pytest.mark.slow
def test_sequential_backward_gives_the_joint_update(tmp_path):
    joint, _ = _params_after(tmp_path / "a", [])
    seq, tr = _params_after(tmp_path / "b", ["trainer.sequential_backward=true"])
    names = tr.last_step.names
    assert names[0] == "seg" and any(n.startswith("adv_") for n in names) and any(n.startswith("D/") for n in names)
    for k in joint:
        torch.testing.assert_close(seq[k], joint[k], rtol=1e-5, atol=1e-7, msg=k)


def test_sequential_backward_frees_the_source_graph_before_the_target_forward():
    from uda._registry import create

    cfg = load_config("advent_synthetic", TINY)
    model = create("model", cfg.model.name, num_classes=cfg.model.num_classes, **cfg.model.options)
    recipe = create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=model, num_classes=cfg.model.num_classes,
                    feature_info=model.feature_info)
    src = {"image": torch.rand(1, 3, 32, 64), "label": torch.randint(0, cfg.model.num_classes, (1, 32, 64))}
    tgt = {"image": torch.rand(1, 3, 32, 64)}
    parts = recipe.generator_loss_parts(src, tgt)
    first = next(parts)
    assert set(first) >= {"seg"} and not any(k.startswith("adv") for k in first)
    sum(first.values()).backward()  # the source graph is released here
    second = next(parts)
    assert second and all(k.startswith("adv_") for k in second)
    with pytest.raises(StopIteration) as stop:
        next(parts)
    step = stop.value.value
    assert not step.source.logits.requires_grad and step.target.logits.requires_grad


@pytest.mark.slow
def test_sequential_backward_with_terms_through_the_source_gives_the_joint_update(tmp_path):
    # self-training + the feature distance (trains through the source output: it joins the first part) + an
    # AdvEnt discriminator with gradient reversal (also through the source) on DACS's DeepLab-v2
    extra = ["data.source.size=64x64", "data.target.size=64x64", "recipe.terms.fd={kind: feature_distance, "
             "weight: 0.5, classes: null}", "recipe.terms.adv={kind: entropy, levels: {logits: 0.001}, "
             "discriminator: fc_tiny, mode: grl}"]

    def params_after(path, more):
        tr = Trainer(load_config("dacs_synthetic", [*TINY, *extra, *more]), path)
        tr.build()
        stage = tr.stages[-1]
        tr.set_modes(stage)
        for i in range(2):
            torch.manual_seed(10 + i)  # the same mixing masks and augmentation draws in both modes
            tr.train_step(stage)
        return {k: p.detach().clone() for k, p in tr.recipe.named_parameters()}, tr

    joint, _ = params_after(tmp_path / "a", [])
    seq, tr = params_after(tmp_path / "b", ["trainer.sequential_backward=true"])
    assert {"seg", "fd", "mix", "adv_logits"} <= set(tr.last_step.names)
    for k in joint:
        torch.testing.assert_close(seq[k], joint[k], rtol=1e-5, atol=1e-6, msg=k)
