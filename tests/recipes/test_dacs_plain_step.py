"""The benchmark baseline benchmarks/plain_dacs_step.py computes the same update as the engine's `dacs` recipe."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_train  # noqa: E402
from plain_dacs_step import PlainDACS  # noqa: E402


def test_plain_dacs_step_matches_engine(tmp_path):
    torch.set_num_threads(1)
    tr = bench_train.build_trainer("dacs", model="deeplabv2_tiny", src_size="64x32", tgt_size="64x32", batch=2,
                                   device=torch.device("cpu"), run_dir=str(tmp_path), extra=["model.options.width=4"])
    stage = next(s for s in tr.stages if s.name == "seg")
    tr.set_modes(stage)
    net = bench_train.uda.create("model", "deeplabv2_tiny", num_classes=19, width=4, multi_level=False)
    net.load_state_dict(tr.model.state_dict())
    g, rc = tr.cfg.optim.generator, tr.cfg.recipe
    plain = PlainDACS(net, lr=g.lr, momentum=g.momentum, weight_decay=g.weight_decay, alpha=rc.terms["mix"]["alpha"],
                      threshold=rc.terms["mix"].get("pseudo_threshold", 0.968), max_iters=tr.cfg.trainer.max_iters, power=g.power)
    plain.train()
    src, tgt = tr.source_iter.batches[0], tr.target_iter.batches[0]
    tr.source_iter, tr.target_iter = bench_train.Preloaded([src]), bench_train.Preloaded([tgt])
    for i in range(3):
        torch.manual_seed(100 + i)  # the same mixing masks and augmentation draws for both
        tr.global_iter = i  # what the loop's counter is before step i + 1 (train_step is called alone here)
        tr.train_step(stage)
        torch.manual_seed(100 + i)
        plain.step(src["image"], src["label"], tgt["image"])
    def tensors(m):
        return [v for v in m.state_dict().values() if isinstance(v, torch.Tensor)]

    for a, b in zip(tensors(tr.model), tensors(net)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # the teachers' parameters (the originals' teacher also refreshes its unused running statistics; ours leaves them)
    for a, b in zip(tr.recipe.mix.teacher.module.parameters(), plain.teacher.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not all(torch.equal(a, b) for a, b in zip(tr.model.parameters(), plain.teacher.parameters()))
