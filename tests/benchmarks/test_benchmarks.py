"""Smoke runs of the benchmark scripts (bench_train, bench_scaling, bench_augment) and checks of their baselines.

The scripts run in-process with ``--smoke`` into a temporary folder; the tests check the JSON they write (keys,
machine description, finite positive timings) and the Markdown next to it. The plain AdvEnt loop, the baseline
of the "no overhead from modularity" target, is checked to perform the same update as the engine's ``advent``
recipe: otherwise the speed comparison would compare different work.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_augment  # noqa: E402
import bench_scaling  # noqa: E402
import bench_train  # noqa: E402
import gpu_check  # noqa: E402
from _common import interleaved, md_table, write_results  # noqa: E402
from plain_advent_loop import PlainAdvEnt  # noqa: E402

MACHINE_KEYS = {"platform", "cpu", "cores", "torch", "threads", "load_average"}


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _load(out: Path, name: str) -> dict:
    data = json.loads((out / f"{name}.json").read_text())
    assert (out / f"{name}.md").read_text().startswith("# ")
    assert {"command", "date", "machine"} <= set(data)
    assert set(data["machine"]) >= MACHINE_KEYS
    assert "--smoke" in data["command"]
    return data


@pytest.mark.slow
def test_bench_train_smoke(tmp_path):
    bench_train.main(["--smoke", "--out", str(tmp_path)])
    data = _load(tmp_path, "train_smoke")
    assert data["matmul_gflops"] > 0
    stages = {(r["recipe"], r["stage"]) for r in data["recipes"]}
    assert {("source_only", "seg"), ("advent", "seg"), ("mlfa", "translator"), ("mlfa", "seg")} <= stages
    for r in data["recipes"]:
        assert r["s_per_it"] > 0 and r["images_per_s"] > 0 and r["gflops_per_it"] > 0
        assert r["mfu"] > 0 and r["mfu_now"] > 0 and r["matmul_gflops_now"] > 0
        assert r["peak_rss_growth_mib"] >= 0
    # AdvEnt has discriminators: more FLOPs per iteration than source-only at the same size.
    flops = {r["recipe"]: r["gflops_per_it"] for r in data["recipes"] if r["stage"] == "seg"}
    assert flops["advent"] > flops["source_only"]
    (ov,) = data["overhead"]
    assert ov["gflops_engine"] == pytest.approx(ov["gflops_plain"])  # same arithmetic on both sides
    assert len(ov["engine_times_s"]) == len(ov["plain_times_s"]) == ov["repeats"]
    assert math.isfinite(ov["ratio_of_medians"]) and isinstance(ov["met"], bool)
    assert data["amp"] is None  # CPU run


@pytest.mark.slow
def test_bench_scaling_smoke(tmp_path):
    bench_scaling.main(["--smoke", "--out", str(tmp_path)])
    data = _load(tmp_path, "scaling_smoke")
    ar = data["allreduce"]
    assert ar["world"] == 2 and ar["busbw_gb_s"] > 0 and len(ar["times_s"]) == 2
    m = data["model"]
    assert m["grad_bytes"] == pytest.approx(178.4e6)
    assert m["flops_per_iteration"]["iteration"] > 1e12  # DeepLab-v2 at 1280x720 + 1024x512: TFLOPs
    for row in m["rows"]:
        for col in ("eff N={}", "no-overlap eff N={}"):
            effs = [row[col.format(n)] for n in (2, 4, 8)]
            assert all(0 < e <= 1 for e in effs) and effs == sorted(effs, reverse=True)
        # Overlapping the buckets with the backward pass can only hide communication.
        assert all(row[f"eff N={n}"] >= row[f"no-overlap eff N={n}"] for n in (2, 4, 8))


def test_write_results_keeps_the_old_pair_when_writing_fails(tmp_path):
    write_results(tmp_path, "r", {"a": 1}, "# old")

    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot render")

    with pytest.raises(RuntimeError, match="cannot render"):
        write_results(tmp_path, "r", {"a": Unprintable()}, "# new")
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}
    assert (tmp_path / "r.md").read_text() == "# old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temporary file left


def test_gpu_check_spent_budget_skips_every_section_but_the_model(tmp_path):
    res = gpu_check.main(["--smoke", "--device", "cpu", "--budget-s", "0", "--out", str(tmp_path)])
    sections = dict(res["sections"])
    assert list(sections)[-1] == "scaling" and sections.pop("scaling")["status"] == "ok"
    assert set(sections) == {"throughput", "memory", "mic_hrda_memory", "short_run", "augment", "cli",
                             "torchrun", "vfm_checkpointing", "compile"}
    assert {v["status"] for v in sections.values()} == {"skipped: the 0 s budget (--budget-s) was spent"}
    assert _load(tmp_path, "gpu_check_smoke")["sections"].keys() == res["sections"].keys()


def test_gpu_check_writes_after_every_section(tmp_path, monkeypatch):
    def killed(*args, **kwargs):  # the device's time limit ends the run in the middle of a section
        raise KeyboardInterrupt

    monkeypatch.setattr(gpu_check, "cli", killed)
    with pytest.raises(KeyboardInterrupt):
        gpu_check.main(["--smoke", "--device", "cpu", "--only", "augment,cli", "--out", str(tmp_path)])
    data = _load(tmp_path, "gpu_check_smoke")
    assert data["sections"] == {"augment": {"status": "ok", "s": pytest.approx(data["total_s"])}}
    assert data["augment"]["device"] == "cpu" and data["augment"]["ms_per_batch"] > 0


def test_gpu_check_compile_rows_compare_with_the_earlier_fp32_row():
    assert not set(gpu_check.VARIANTS) & set(gpu_check.COMPILE_VARIANTS)  # compiling runs in its own section
    fp32 = [{"family": "f", "variant": "fp32", "status": "ok", "s_per_it": 2.0, "peak_mib": 100.0}]
    rows = [{"family": "f", "variant": "bf16+channels_last+compile", "status": "ok", "s_per_it": 0.5,
             "peak_mib": 40.0},
            {"family": "g", "variant": "bf16+channels_last+compile", "status": "ok", "s_per_it": 1.0,
             "peak_mib": None},
            {"family": "f", "variant": "bf16+channels_last+compile", "status": "skipped: budget"}]
    out = gpu_check.compare_with_fp32(rows, fp32)
    assert out[0]["speedup_vs_fp32"] == 4.0 and out[0]["memory_vs_fp32"] == 0.4
    assert "speedup_vs_fp32" not in out[1] and "speedup_vs_fp32" not in out[2]  # no fp32 row / not measured


def test_gpu_check_budget_timeouts():
    assert gpu_check.Budget(None).timeout(300) == 300 and not gpu_check.Budget(None).spent()
    assert gpu_check.Budget(1000).timeout(300) == 300
    assert gpu_check.Budget(10).timeout(300) == 60  # never under the floor: a start-up must fit
    assert gpu_check.Budget(0).spent() and gpu_check.Budget(0).timeout(300, floor=5) == 5


def test_scaling_model():
    # No communication cost at N=1; a ring all-reduce moves 2(N-1)/N of the bytes.
    assert bench_scaling.predict(1.0, 178e6, 1, 10e9) == 1.0
    assert bench_scaling.predict(1.0, 100e6, 2, 10e9, alpha=0.0) == pytest.approx(1.01)
    assert bench_scaling.predict(1.0, 100e6, 4, 10e9, alpha=0.0) == pytest.approx(1.015)
    assert bench_scaling.grad_numel("deeplabv2_tiny") > 0


def test_scaling_model_ddp_overlap():
    mib = 2**20
    # 100 MiB at 10 GB/s, N=2: C = 100 MiB / 10 GB/s = 10.49 ms in 4 buckets of 25 MiB.
    comm = 100 * mib / 10e9
    last = 25 * mib / 10e9
    # A long backward pass hides all but the last bucket, which can only start when the backward ends.
    assert bench_scaling.predict_ddp(1.0, 100 * mib, 2, 10e9, alpha=0.0) == pytest.approx(1.0 + last)
    # A short one hides 2/3 of the step's compute worth of communication; the rest is exposed.
    t = 0.003
    assert bench_scaling.predict_ddp(t, 100 * mib, 2, 10e9, alpha=0.0) == pytest.approx(t + comm - 2 / 3 * t)
    # Per-bucket latency: 4 buckets x 2(N-1) hops at N=2.
    with_alpha = bench_scaling.predict_ddp(t, 100 * mib, 2, 10e9, alpha=1e-4)
    assert with_alpha - bench_scaling.predict_ddp(t, 100 * mib, 2, 10e9, alpha=0.0) == pytest.approx(8e-4)
    # Never better than no communication, never worse than no overlap.
    assert 1.0 < bench_scaling.predict_ddp(1.0, 178e6, 8, 10e9) < bench_scaling.predict(1.0, 178e6, 8, 10e9)
    assert bench_scaling.efficiency(1.0, 178e6, 1, 10e9) == 1.0


@pytest.mark.slow
def test_bench_augment_smoke(tmp_path):
    bench_augment.main(["--smoke", "--out", str(tmp_path), "--device", "cpu"])
    data = _load(tmp_path, "augment_smoke")
    (row,) = data["rows"]
    assert row["cpu_s_per_batch"] > 0 and row["cpu_images_per_s"] > 0 and "gpu_speedup" not in row


def test_plain_loop_matches_engine_advent(tmp_path):
    """One plain AdvEnt step from the same weights gives the same model and discriminators as the engine's."""
    torch.set_num_threads(1)
    tr = bench_train.build_trainer("advent", model="deeplabv2_tiny", src_size="64x32", tgt_size="64x32", batch=2,
                                   device=torch.device("cpu"), run_dir=str(tmp_path), extra=["model.options.width=4"])
    stage = next(s for s in tr.stages if s.name == "seg")
    tr.set_modes(stage)
    net = bench_train.uda.create("model", "deeplabv2_tiny", num_classes=19, width=4)
    net.load_state_dict(tr.model.state_dict())
    g = tr.cfg.optim.generator
    plain = PlainAdvEnt(net, num_classes=19, ndf=8, lr=g.lr, momentum=g.momentum, weight_decay=g.weight_decay,
                        max_iters=tr.cfg.trainer.max_iters)
    discs = tr.recipe.aligner.discriminators
    plain.d_main.load_state_dict(discs["logits"].state_dict())
    plain.d_aux.load_state_dict(discs["aux"].state_dict())
    plain.train()
    src, tgt = tr.source_iter.batches[0], tr.target_iter.batches[0]
    tr.source_iter, tr.target_iter = bench_train.Preloaded([src]), bench_train.Preloaded([tgt])
    for _ in range(2):
        tr.train_step(stage)
        plain.step(src["image"], src["label"], tgt["image"])
    for a, b in zip(tr.model.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(discs["logits"].parameters(), plain.d_main.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    before = [p.detach().clone() for p in net.parameters()]
    plain.step(src["image"], src["label"], tgt["image"])
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # it does train


def test_common_helpers():
    calls = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]  # order reversed every round
    assert len(times["a"]) == len(times["b"]) == 3
    table = md_table([{"x": 1.23456, "y": None, "z": True}])
    assert table.splitlines()[2] == "| 1.235 | — | yes |"


def test_make_docs_collects_results(tmp_path):
    import make_docs

    res = tmp_path / "results"
    res.mkdir()
    recipes = {"command": "python benchmarks/bench_recipes.py", "date": "d", "machine": {},
               "summary": [{"config": "source_only_synthetic", "miou_mean": 20.0, "miou_std": 1.0},
                           {"config": "mlfa_synthetic", "miou_mean": 30.0, "miou_std": 2.0}]}
    (res / "recipes.json").write_text(json.dumps(recipes))
    (res / "recipes.md").write_text("# Recipes\n\n| config | mIoU |\n|---|---|\n| mlfa | 30 |\n")
    (res / "metrics.json").write_text(json.dumps({"metric": {"results": {"uda": {"speedup_vs_numpy": 5.7}}}}))
    (res / "train_smoke.json").write_text("{}")  # smoke results are ignored
    doc, assets = tmp_path / "benchmarks.md", tmp_path / "assets"
    make_docs.main(["--results", str(res), "--doc", str(doc), "--assets", str(assets)])
    page = doc.read_text()
    assert (assets / "recipes_miou.png").is_file()
    assert "| mlfa | 30 |" in page and "## Adaptation quality" in page
    assert "best 5.70×" in page and "## Summary" in page  # the 10x metric goal beside the measured figure
    assert "| goal | measured | note |" in page and "**no**" not in page and "issue" not in page
    assert "`train.json`" in page and "`scaling.json`" in page  # missing results are named
    assert "train_smoke" not in page
