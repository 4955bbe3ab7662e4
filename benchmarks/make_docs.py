"""Collect ``benchmarks/results/*.json`` / ``*.md`` into ``docs/benchmarks.md`` and draw its plots.

Reads every result file (``train``, ``train_cuda``, ``scaling``, ``augment`` from this folder's scripts, and
``data``, ``models``, ``metrics``, ``recipes`` from the data, model, evaluation and recipe benchmarks), writes
one page with a summary (each performance goal beside the measured figure and, where it falls short, the
cause recorded with the results), the per-benchmark tables (each result's own Markdown), and plots into
``docs/assets/benchmarks/``. Smoke results (``*_smoke.json``) are ignored. A missing result is named on the
page. Re-run after any benchmark: ``python benchmarks/make_docs.py``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
ASSETS = ROOT / "docs" / "assets" / "benchmarks"

EXPECTED = {
    "train": "python benchmarks/bench_train.py",
    "train_cuda": "python benchmarks/bench_train.py --device cuda  (needs a GPU)",
    "scaling": "python benchmarks/bench_scaling.py",
    "augment": "python benchmarks/bench_augment.py",
    "data": "python benchmarks/bench_data.py",
    "models": "python benchmarks/bench_models.py",
    "metrics": "python benchmarks/bench_metrics.py",
    "recipes": "python benchmarks/bench_recipes.py",
    "memory": "python benchmarks/bench_memory.py",
    "gpu_check": "python benchmarks/gpu_check.py --device cuda  (needs a GPU)",
}


def load_results(results: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted(results.glob("*.json")):
        if p.stem.endswith("_smoke"):
            continue
        try:
            out[p.stem] = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
    return out


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _find(obj: Any, pattern: str) -> list[tuple[str, Any]]:
    """All (dotted key, value) pairs under ``obj`` whose key matches ``pattern`` (regex, case-insensitive)."""
    found = []

    def walk(o: Any, path: str) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                p = f"{path}.{k}" if path else str(k)
                if re.search(pattern, str(k), re.I):
                    found.append((p, v))
                walk(v, p)
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, f"{path}[{i}]")

    walk(obj, "")
    return found


def _rows_with(obj: Any, key: str) -> list[dict]:
    """The longest list of dicts under ``obj`` whose items carry ``key``."""
    best: list[dict] = []

    def walk(o: Any) -> None:
        nonlocal best
        if isinstance(o, list) and len(o) > len(best) and all(isinstance(x, dict) and key in x for x in o):
            best = o
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(obj)
    return best


# ------------------------------------------------------------------------------------------------ targets
def targets(res: dict[str, dict]) -> list[dict[str, str]]:
    rows = []

    def add(target: str, measured: str, met: bool | None, note: str = "") -> None:
        rows.append({"goal": target, "measured": measured, "note": note})

    tr = res.get("train")
    if tr:
        for o in tr.get("overhead", []):
            add(f"engine within 5 % of a plain AdvEnt loop ({o['model']}, {o['size']})",
                f"engine/plain = {o['ratio_of_medians']:.3f} (pairwise median {o['median_pairwise_ratio']:.3f}, "
                f"{o['repeats']} interleaved repeats)", o["met"],
                "" if o["met"] else "see *Engine overhead* below for the profiled cause")
    else:
        add("engine within 5 % of a plain AdvEnt loop", "not measured (train.json missing)", None)
    cu = res.get("train_cuda")
    if cu and cu.get("amp"):
        a = cu["amp"]
        add("bf16 AMP + channels_last ≥ 2× faster, ≤ 60 % peak memory (1280×720/1024×512)",
            f"{a['speedup']:.2f}× faster, {a['memory_ratio']:.0%} memory ({cu['machine'].get('gpu')})", a["met"])
    else:
        add("bf16 AMP + channels_last ≥ 2× faster, ≤ 60 % peak memory; mIoU unchanged",
            "not measured: no GPU was available; run `python benchmarks/bench_train.py --device cuda`", None)
    da = res.get("data")
    sp = _find(da, r"^speedup$") if da else []
    if sp and _num(sp[0][1]) is not None:
        v = _num(sp[0][1])
        add("data pipeline ≥ 1.5× a plain PIL loader (GTA5 PNG → 1280×720)", f"{v:.2f}×", v >= 1.5)
    else:
        add("data pipeline ≥ 1.5× a plain PIL loader", "not measured (data.json missing)", None)
    me = res.get("metrics")
    if me:
        sps = [(k, _num(v)) for k, v in _find(me, r"speedup_vs_numpy") if _num(v) is not None]
        best = max(sps, key=lambda kv: kv[1]) if sps else None
        if best:
            add("confusion matrix ≥ 10× NumPy bincount (2048×1024)", f"best {best[1]:.2f}× ({best[0].split('.')[-2]})",
                best[1] >= 10, "" if best[1] >= 10 else "cause documented with the metric results below")
    else:
        add("confusion matrix ≥ 10× NumPy bincount", "not measured (metrics.json missing)", None)
    rc = res.get("recipes")
    add("every recipe × 3 seeds on the synthetic pair, mIoU mean ± std beside source-only",
        "see *Adaptation quality* below" if rc else "not measured yet (recipes.json missing)", None)
    mem = res.get("memory")
    seq = [r for r in (mem or {}).get("rows", []) if r.get("mode") == "sequential"]
    if seq:
        r = seq[0]
        add(f"sequential backward ≤ 0.85× the joint peak memory (AdvEnt, {r['model']} {r['size']}, "
            f"{r['device']})", f"{r['peak_vs_joint']:.3f}× ({r['peak_mib']:.0f} MiB)", r["peak_vs_joint"] <= 0.85,
            "" if r["peak_vs_joint"] <= 0.85 else "see *Memory* below")
    else:
        add("sequential backward ≤ 0.85× the joint peak memory", "not measured (memory.json missing)", None)
    gc_ = res.get("gpu_check")
    da = [r for r in (gc_ or {}).get("throughput", []) if r.get("status") == "ok"
          and "DAFormer" in r.get("family", "") and r.get("variant") == "bf16+channels_last"]
    if da:
        v = da[0]["s_per_it"]
        add("DAFormer iteration (512 crops, batch 2, bf16) ≤ 0.25 s on one H200-class GPU",
            f"{v:.3f} s ({gc_['machine'].get('gpu')})", v <= 0.25)
    else:
        add("DAFormer iteration (512 crops, batch 2, bf16) ≤ 0.25 s on one H200-class GPU",
            "not measured: no GPU was available; run `python benchmarks/gpu_check.py --device cuda`", None)
    mh = [r for r in (gc_ or {}).get("mic_hrda_memory", []) if r.get("within_target") is not None]
    if mh:
        add("MIC-HRDA at 1024 crops, bf16 + checkpointing ≤ 20 GB", f"{mh[0]['peak_mib'] / 1024:.1f} GiB",
            mh[0]["within_target"])
    else:
        add("MIC-HRDA at 1024 crops, bf16 + checkpointing ≤ 20 GB",
            "not measured on a GPU (CPU ratios: `memory_mic_hrda_mitb5.md`); "
            "run `python benchmarks/gpu_check.py --device cuda --only mic_hrda_memory`", None)
    sc = res.get("scaling")
    rows8 = [r for r in (sc or {}).get("model", {}).get("rows", []) if "eff N=8" in r]
    if rows8:
        def low(pred) -> str:
            sel = [r["eff N=8"] for r in rows8 if pred(r)]
            return f"{min(sel):.2f}" if sel else "—"
        nvl = low(lambda r: "NVLink" in r["link"])
        pcie = low(lambda r: "PCIe" in r["link"])
        bad = sorted({f"{r['GPU']} on {r['link']}" for r in rows8 if r["eff N=8"] < 0.9})
        add("scaling efficiency ≥ 0.9 at 8 GPUs (model, DeepLab-v2 at the paper sizes)",
            f"lowest on NVLink {nvl}, on PCIe {pcie}" + (f"; below 0.9: {', '.join(bad)}" if bad else ""),
            not bad, "a model, not a measurement; see *Scaling* below")
    if sc and sc.get("check"):
        c = sc["check"][-1]
        add("N-GPU scaling model checked against the 2-process measurement",
            f"{c['config']}: predicted T2 {c['T2 predicted']:.3f} s vs measured {c['T2 s/it measured']:.3f} s "
            f"(ratio {c['predicted/measured']:.2f})", None, "see *Scaling* below")
    else:
        add("N-GPU scaling model checked against the 2-process measurement", "not measured (scaling.json missing)",
            None)
    return rows


# ------------------------------------------------------------------------------------------------ plots
def plots(res: dict[str, dict], assets: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assets.mkdir(parents=True, exist_ok=True)
    made: list[tuple[str, str]] = []

    tr = res.get("train")
    if tr and tr.get("recipes"):
        rows = [r for r in tr["recipes"] if r["model"] == "deeplabv2_tiny"]
        labels = [f"{r['recipe']}\n({r['stage']})" if r["stage"] != "seg" else r["recipe"] for r in rows]
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.bar(range(len(rows)), [r["s_per_it"] for r in rows], color="#4C72B0")
        ax2 = ax.twinx()
        ax2.plot(range(len(rows)), [r["gflops_per_it"] for r in rows], "o-", color="#DD8452")
        ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylabel("seconds / iteration")
        ax2.set_ylabel("GFLOP / iteration", color="#DD8452")
        size = rows[0]["size"] if rows else ""
        ax.set_title(f"Iteration time per recipe, deeplabv2_tiny {size}, batch 1+1, CPU")
        fig.tight_layout()
        fig.savefig(assets / "recipe_iteration.png", dpi=110)
        plt.close(fig)
        made.append(("recipe_iteration.png", "Seconds per iteration (bars) and FLOPs per iteration (line) per recipe"))
    if tr and tr.get("overhead"):
        ovs = tr["overhead"]
        fig, axes = plt.subplots(1, len(ovs), figsize=(4 * len(ovs), 3.4))
        axes = axes if len(ovs) > 1 else [axes]
        for ax, o in zip(axes, ovs):
            ax.boxplot([o["plain_times_s"], o["engine_times_s"]])
            ax.set_xticks([1, 2], ["plain loop", "engine"])
            ax.set_ylabel("seconds / iteration")
            ax.set_title(f"{o['model']} {o['size']}: ratio {o['ratio_of_medians']:.3f}", fontsize=9)
        fig.tight_layout()
        fig.savefig(assets / "engine_overhead.png", dpi=110)
        plt.close(fig)
        made.append(("engine_overhead.png", "AdvEnt iteration: plain hand-written loop vs the engine (interleaved)"))
    sc = res.get("scaling")
    if sc and sc.get("model"):
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        ns = [1, 2, 4, 8]
        for row in sc["model"]["rows"]:
            if row["GPU"] not in ("V100 fp32", "H100 SXM bf16") or row["link"] not in ("PCIe 3.0 x16", "NVLink 4 (H100)"):
                continue
            line, = ax.plot(ns, [1.0] + [row[f"eff N={n}"] for n in ns[1:]], "o-",
                            label=f"{row['GPU']}, {row['link']}: DDP")
            if "no-overlap eff N=2" in row:
                ax.plot(ns, [1.0] + [row[f"no-overlap eff N={n}"] for n in ns[1:]], "x--", color=line.get_color(),
                        label=f"{row['GPU']}, {row['link']}: no overlap")
        ax.set_xlabel("GPUs (N)")
        ax.set_ylabel("predicted scaling efficiency")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=6)
        ax.set_title("DeepLab-v2, 178 MB of gradients per iteration (model, not a measurement)", fontsize=9)
        fig.tight_layout()
        fig.savefig(assets / "scaling_model.png", dpi=110)
        plt.close(fig)
        made.append(("scaling_model.png", "Predicted scaling efficiency of DeepLab-v2 training for N GPUs"))
    mo = res.get("models")
    if mo:
        rows = [r for r in _rows_with(mo, "size") if _num(r.get("mean_s") or r.get("median_s")) is not None]
        modes = sorted({str(r.get("mode", "")) for r in rows})
        if len({r["size"] for r in rows}) > 1:
            fig, ax = plt.subplots(figsize=(6.5, 3.6))
            for mode in modes:
                rs = [r for r in rows if str(r.get("mode", "")) == mode]

                def px(r: dict) -> int:
                    w, h = (int(v) for v in str(r["size"]).lower().split("x"))
                    return w * h

                rs.sort(key=px)
                ax.plot([px(r) / 1e6 for r in rs], [r.get("mean_s") or r.get("median_s") for r in rs], "o-",
                        label=f"{rs[0].get('model', mo.get('model', ''))} {mode}")
            ax.set_xlabel("megapixels per image")
            ax.set_ylabel("seconds")
            ax.legend(fontsize=7)
            ax.set_title("Model time vs resolution (bench_models)", fontsize=9)
            fig.tight_layout()
            fig.savefig(assets / "time_vs_resolution.png", dpi=110)
            plt.close(fig)
            made.append(("time_vs_resolution.png", "Forward / forward+backward time vs input resolution"))
    rc = res.get("recipes")
    if rc:
        rows = _rows_with(rc, "miou_mean") or _rows_with(rc, "recipe")
        mean_key = next((k for k in (rows[0] if rows else {}) if re.search(r"miou.*mean|mean.*miou", k, re.I)), None)
        std_key = next((k for k in (rows[0] if rows else {}) if re.search(r"miou.*std|std.*miou", k, re.I)), None)
        if rows and mean_key:
            fig, ax = plt.subplots(figsize=(8, 3.6))
            ax.bar(range(len(rows)), [r[mean_key] for r in rows],
                   yerr=[r.get(std_key) or 0 for r in rows] if std_key else None, capsize=3, color="#55A868")
            names = [str(r.get("recipe") or r.get("config", "?")).replace("_synthetic", "") for r in rows]
            ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel("target mIoU (%)")
            ax.set_title("Synthetic pair: target mIoU per recipe (mean ± std over seeds)", fontsize=9)
            fig.tight_layout()
            fig.savefig(assets / "recipes_miou.png", dpi=110)
            plt.close(fig)
            made.append(("recipes_miou.png", "Target mIoU per recipe on the synthetic pair, mean ± std over seeds"))
    return made


# ------------------------------------------------------------------------------------------------ page
SECTIONS = [
    ("train", "Training iteration and engine overhead"),
    ("train_cuda", "Training iteration on a GPU (fp32 vs bf16 + channels_last)"),
    ("models", "Model forward / backward"),
    ("data", "Data pipeline"),
    ("augment", "Kornia augmentation: GPU vs CPU per batch"),
    ("metrics", "Evaluation: confusion matrix and images/s"),
    ("recipes", "Adaptation quality on the synthetic pair"),
    ("scaling", "Scaling"),
    ("memory", "Memory: joint vs sequential backward"),
    ("gpu_check", "GPU check (one command on a lent GPU)"),
]


def _demote(md: str) -> str:
    """A result's Markdown inside the page: its headings one level down, its title dropped."""
    lines = md.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(("#" + ln) if ln.startswith("#") else ln for ln in lines).strip()


def overhead_note(tr: dict) -> str:
    lines = ["### Reading the engine-overhead figures", "",
             "Both sides run the same model and discriminator classes on the same preloaded tensors, in the same "
             "process, with the same thread count, alternating A/B/B/A; the FLOP counts of the two iterations are "
             "identical (see the table). The engine side is `Trainer.train_step` (freeze → generator losses → "
             "backward → unfreeze → discriminator losses → backward → non-finite check → optimizer steps → "
             "schedules); logging, tqdm and checkpoints are interval work outside it."]
    ovs = tr.get("overhead", [])
    lines += ["", "Ratios on this machine (the two estimators are the ratio of the medians and the median of the "
              "per-pair ratios): " + "; ".join(
                  f"{o['model']} {o['size']}: {o['ratio_of_medians']:.3f} / {o['median_pairwise_ratio']:.3f}"
                  for o in ovs) + ".", "",
              "- **Re-measured** after the engine redesign, DDP and the sequential-backward seam (overhead rows "
              "from `bench_train.py --overhead-only`, 15 interleaved repeats for the tiny model and 12 for "
              "ResNet-101, one process, one thread, on a CPU shared with other jobs: load average in the table's "
              "heading). The engine is within 5 % of the plain loop for both models, with the joint backward "
              "(default) and with `trainer.sequential_backward=true` (`engine seq`, the plain loop's own "
              "structure); raw times of every repeat are in `train.json`.",
              "- **What is left of the difference** (operators dispatched in one iteration, tiny model at 128×64, "
              "joint backward: 1342 against 1302): the non-finite check (`abs`, `any`, `ne`, one host sync), two "
              "more `upsample_bilinear2d` (a discriminator-phase map the plain loop takes from its generator "
              "phase), and per-parameter gradient sums out of place (`add`) where the plain loop accumulates in "
              "place (`add_`), because the joint backward meets each shared parameter twice in one graph. "
              "The earlier recomputation of both domains' discriminator inputs (24 `upsample_bilinear2d` per 3 "
              "iterations against 12) is gone since the discriminator phase reuses the generator phase's target "
              "maps. None of this is orchestration; callbacks, logging and checkpoints are outside "
              "`train_step`, and the DDP router is not built in one process.",
              "- **ResNet-101 (160×96):** the convolutions dominate; single repeats on this shared CPU still scatter "
              "by tens of per cent, which the interleaving and the medians absorb. A GPU run (`bench_train.py "
              "--device cuda`, 20 repeats at 1024×512) remains the measurement at the paper sizes."]
    return "\n".join(lines)


def scaling_note(sc: dict) -> str:
    ar = sc["allreduce"]
    lines = ["### Reading the scaling figures", "",
             "The engine wraps every trained network in DistributedDataParallel, which all-reduces the gradients "
             "in 25 MiB buckets while the backward pass is still running. The model charges each iteration its "
             "compute plus the part of the ring all-reduce (`2(N−1)/N · bytes / bus bandwidth`) that does not fit "
             "under the backward pass, and at least the last bucket; the no-overlap columns charge the whole "
             f"all-reduce (the pessimistic bound). On this CPU the measured gloo all-reduce of 178 MB takes "
             f"{ar['median_s']:.2f} s ({ar['busbw_gb_s']:.2f} GB/s)."]
    for c in sc["check"]:
        extra = c["T2 s/it measured"] - c["T1 s/it"]
        comm = c["T2 predicted"] - c["T1 s/it"]
        flat = c.get("T2 predicted (no overlap)")
        bound = (f"; the no-overlap bound, {flat - c['T1 s/it']:.3f} s" if flat is not None else "")
        where = ""
        if flat is not None and c["T2 s/it measured"] > flat:
            where = (" The measurement is above both: the extra time is the two ranks' compute slowing each other "
                     "down, not communication.")
        elif flat is not None and c["T2 s/it measured"] >= c["T2 predicted"]:
            where = " The measurement lies between the overlapped prediction and the no-overlap bound."
        lines += ["", f"- `{c['config']}` ({c['model']}, {c['grad MB']:.0f} MB of gradients): the second process "
                  f"adds {extra:.3f} s per iteration; the overlapped model accounts for {comm:.3f} s "
                  f"(predicted/measured {c['predicted/measured']:.2f}){bound}.{where}"]
    lines += ["", "On this machine the overlap the model assumes is not fully available: two ranks share 2 cores "
              "(which other jobs also load, see the load average), so gloo's reduction competes with the backward "
              "pass for the same cores, each rank's compute slows down, and every step waits for the slower rank. "
              "On GPUs each rank owns its device and NCCL's reduction runs beside the backward kernels; there the "
              "model's compute/communication split is the part that carries over, with the bus bandwidths of the "
              "table. It predicts near-linear scaling for fp32 DeepLab-v2 on any link; with bf16 on A100/H100, "
              "where compute is ~20–60× shorter than fp32 on a V100, PCIe links lose efficiency even with overlap, "
              "and NVLink keeps it. `benchmarks/gpu_check.py` feeds the model the step time measured on a lent GPU."]
    return "\n".join(lines)


def tuning_history() -> str:
    """How the CPU-sized self-training presets got their values: single seed-0 runs on the code of the time, kept
    here (not in the presets' comments) and not re-measured; the three-seed table above is the current figure."""
    rows = [
        ("`daformer_synthetic`", "`trainer.max_iters` 800 at lr 2e-3",
         "400 iterations at lr 6e-4: 26.3; 600 at 1e-3: 29.3; 800 at 2e-3: 31.7 (the teacher of that time)"),
        ("`vfm_uda_synthetic`", "`recipe.fd_weight` 0 (no feature distance)",
         "teacher on running statistics: with the feature distance 22.71, without 24.51; on the later code 29.87 "
         "without the feature distance (30.9 also without masking); source only 22.03"),
        ("`hrda_synthetic`", "whole 256×128 images (`recipe.crop` null)",
         "128×128 crops (a 64×64 context view): 21.9"),
        ("`mic_synthetic`", "MIC's λ 1 and mask ratio 0.7; blocks of 32 pixels (8 × 4 per 256×128 image)",
         "λ 1: 48.3, λ 0.25: 47.3; with the teacher on running statistics, blocks of 8 and 16 pixels scored lower"),
    ]
    lines = ["## Tuning history of the synthetic presets", "",
             "How the CPU-sized presets on the built-in synthetic pair got their values. Each figure is the target "
             "mIoU of one seed-0 run on the code of the time (not re-measured since; the three-seed table under "
             "*Adaptation quality on the synthetic pair* is the current measurement). The recipe pages give the "
             "reasons ([DAFormer](recipes/daformer.md), [HRDA](recipes/hrda.md), [MIC](recipes/mic.md), "
             "[VFM-UDA](recipes/vfm_uda.md)).", "",
             "| preset | chosen | seed-0 runs that chose it (mIoU) |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def build_page(res: dict[str, dict], results: Path, made: list[tuple[str, str]]) -> str:
    page = ["# Benchmarks", "",
            "Measured by the scripts in `benchmarks/` (see `benchmarks/README.md` for one command per script). "
            "Every figure names its machine, command and date; ratios are measured side by side in one run with "
            "interleaved repeats. The CPU figures come from a 2-core machine shared with other jobs: read the "
            "load average next to each table. This page is generated by `python benchmarks/make_docs.py` from "
            "`benchmarks/results/*.json`.", "",
            "## Summary", ""]
    from _common import md_table

    page.append(md_table(targets(res), ["goal", "measured", "note"]))
    missing = [f"`{k}.json` (`{cmd}`)" for k, cmd in EXPECTED.items() if k not in res]
    if missing:
        page += ["Results not present when this page was generated: " + ", ".join(missing) + ".", ""]
    if made:
        page += ["## Plots", ""]
        page += [f"![{cap}](assets/benchmarks/{f})\n\n*{cap}.*\n" for f, cap in made]
    known = {k for k, _ in SECTIONS}
    others = [(k, f"Other results: `{k}`") for k in sorted(res) if k not in known]
    for key, title in SECTIONS + others:
        md_path = results / f"{key}.md"
        if key not in res and not md_path.is_file():
            continue
        page += [f"## {title}", ""]
        if md_path.is_file():
            page += [_demote(md_path.read_text()), ""]
        else:
            page += ["(JSON only: `benchmarks/results/" + key + ".json`)", ""]
        if key == "train":
            page += [overhead_note(res["train"]), ""]
        if key == "recipes" and res.get("recipes_final_seed0"):
            page += ["**Which code these figures come from.** Every row of the three-seed table was measured on "
                     "the current training code (the commands and dates are listed under the table). "
                     "`recipes_final_seed0`, under 'Other results', is an earlier seed-0 check kept for the pages "
                     "that cite its rows (the DAFormer page's teacher on running statistics).", ""]
        if key == "scaling" and res.get("scaling", {}).get("check"):
            page += [scaling_note(res["scaling"]), ""]
    page += [tuning_history(), ""]
    page += ["## Design choices of the benchmarks", "",
             "- The engine is timed through `Trainer.train_step` with its data iterators replaced by preloaded "
             "batches (not a dataset that returns preloaded tensors): the loader's cost belongs to the data "
             "benchmark, and this isolates the loop's own overhead.",
             "- One torch thread by default on the CPU: with 2 shared cores, more threads oversubscribe them and "
             "a tiny model's iteration took 10–25 s instead of ~1 s in a first try.",
             "- Peak memory on the CPU is sampled RSS growth during the timed iterations (a 5 ms sampler thread); "
             "`ru_maxrss` is process-wide and monotonic, so it is reported once per run. On CUDA: "
             "`torch.cuda.max_memory_allocated` around one step, one configuration alive at a time.",
             "- MFU = FLOPs counted by `FlopCounterMode` over one full iteration (convolutions and matmuls, "
             "forward and backward; elementwise work not counted) ÷ seconds ÷ the fp32 `torch.mm` rate measured "
             "in the same run.",
             "- The full random-init `deeplabv2` trains at the paper's lr (2.5e-4) with `trainer.nonfinite=skip` "
             "so a diverging random network cannot stop the timing; the rows report skipped steps.",
             "- Scaling: per-iteration times come from `metrics.jsonl` (`log_every=1`), the first iterations "
             "dropped, so process start-up and the final evaluation are excluded.", ""]
    return "\n".join(page)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--doc", default=str(DOC))
    ap.add_argument("--assets", default=str(ASSETS))
    args = ap.parse_args(argv)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    res = load_results(Path(args.results))
    made = plots(res, Path(args.assets))
    page = build_page(res, Path(args.results), made)
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text(page.rstrip() + "\n")
    print(f"wrote {args.doc} ({len(res)} result files, {len(made)} plots)")


if __name__ == "__main__":
    main()
