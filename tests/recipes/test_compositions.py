"""Compositions across the two lineages, each trained from the command line: every term's losses are logged and
every term's trainable parts (discriminators) or carried teachers move (a stateless term's loss is positive). No
term is ever silently dropped."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from uda._io import load_checkpoint
from uda.cli import main
from uda.config import load_config
from uda.engine import Trainer

COMMON = ["trainer.max_iters=3", "trainer.checkpoint_every=3", "trainer.log_every=1"]

COMPOSITIONS = {
    # DAFormer + AdvEnt's entropy discriminator on the output level
    "daformer_advent": ("daformer_synthetic", [
        "recipe.terms.adv={kind: entropy, levels: {logits: 0.001}, discriminator: fc_tiny}"],
        {"mix": ["mix"], "adv": ["adv_logits", "D/adv_d_logits"]}),
    # HRDA + entropy minimisation on the target predictions
    "hrda_minent": ("hrda_synthetic", ["recipe.terms.ent={kind: minent, levels: {logits: 0.001}}"],
                    {"mix": ["mix", "mix_detail"], "ent": ["ent_logits"]}),
    # MLFA (CycleGAN-translated source + multi-level feature alignment) + MIC with a teacher of its own
    "mlfa_mic": ("mlfa_synthetic", ["recipe.terms.mic={kind: mic, block: 8}"],
                 {"mic": ["mic"], "aligner": ["aligner_adv_multilevel", "D/aligner_d_multilevel"]}),
    # DACS self-training on FDA-translated source images
    "fda_dacs": ("fda_synthetic", ["recipe.terms.mix={kind: self_training}"], {"mix": ["mix"]}),
}


def invoke(*args):
    """Run ``uda ARGS`` in-process (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(COMPOSITIONS))
def test_composition_trains_from_the_cli(tmp_path, tiny, case):
    name, extra, expected = COMPOSITIONS[case]
    out = tmp_path / case
    yaml_file = tmp_path / f"{case}.yaml"  # the preset at the test suite's tiny sizes, as a config file
    yaml_file.write_text(tiny(name, *COMMON).to_yaml())
    r = invoke("train", yaml_file, "--out", out, *[a for o in extra for a in ("--set", o)])
    assert r.exit_code == 0, r.output
    logged: dict[str, float] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        logged |= row.get("loss", {}) | {f"D/{k}": v for k, v in row.get("loss_d", {}).items()}
    for term, keys in expected.items():
        assert set(keys) <= set(logged), f"{case}: the {term} term's losses {keys} were not logged ({sorted(logged)})"

    # the same config, built but not trained: the initial state of every term (same seed, same weights)
    cfg = load_config(yaml_file, extra)
    tr = Trainer(cfg, tmp_path / "init")
    tr.build()
    before = {k: v.clone() for k, v in tr.recipe.state_dict().items() if isinstance(v, torch.Tensor)}
    after = load_checkpoint(out / "checkpoints" / "last.pt")["recipe"]
    for term in expected:
        assert term in tr.recipe.terms, f"{case}: term {term} missing from the built recipe"
        keys = [k for k in before if k.startswith(f"{term}.") and before[k].is_floating_point()]
        if not keys:  # a stateless term (entropy minimisation): its loss reaches the student
            assert all(logged[k] > 0 for k in expected[term]), f"{case}: {term} contributed nothing"
            continue
        moved = [k for k in keys if not torch.equal(before[k], after[k])]
        assert moved, f"{case}: nothing of the {term} term changed in training"
