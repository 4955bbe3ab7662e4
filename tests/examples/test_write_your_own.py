"""docs/write-your-own.md: its code is examples/my_terms.py, and both methods train from the command line with
``--import`` (tiny sizes), each with its own loss logged and its parts in the run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from uda.cli import main


def invoke(*args):
    """Run ``uda ARGS`` in-process (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


ROOT = Path(__file__).resolve().parents[2]
TINY = ["trainer.max_iters=2", "trainer.checkpoint_every=2", "trainer.log_every=1", "trainer.tensorboard=false",
        "data.source.options.num=4", "data.target.options.num=4", "data.val.options.num=2", "data.batch_size=2"]


def test_the_page_shows_the_example_file():
    page = (ROOT / "docs" / "write-your-own.md").read_text()
    block = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    assert block == (ROOT / "examples" / "my_terms.py").read_text()


def _losses(run: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        out |= row.get("loss", {}) | {f"D/{k}": v for k, v in row.get("loss_d", {}).items()}
    return out


@pytest.mark.slow
def test_both_methods_train_from_the_cli(tmp_path):
    sets = [a for o in TINY for a in ("--set", o)]
    a = tmp_path / "pixel_confidence"
    r = invoke("train", "daformer_synthetic", "--import", ROOT / "examples" / "my_terms.py",
               "--set", "recipe.terms.mix.kind=pixel_confidence", "--out", a, "--device", "cpu", *sets)
    assert r.exit_code == 0, r.output
    assert "mix" in _losses(a)
    cfg = (a / "config.yaml").read_text()
    assert "kind: pixel_confidence" in cfg and "my_terms.py" in cfg  # the import is recorded
    b = tmp_path / "max_square"
    r = invoke("train", "source_only_synthetic", "--import", ROOT / "examples" / "my_terms.py", "--set",
               "recipe.terms.sq={kind: max_square, levels: {logits: 0.001}, discriminator: fc_tiny}",
               "--out", b, "--device", "cpu", *sets)
    assert r.exit_code == 0, r.output
    losses = _losses(b)
    assert {"seg", "adv_logits", "D/d_logits"} <= set(losses) and losses["adv_logits"] > 0
    r = invoke("evaluate", b, "--json")  # a later command on the run imports the file again
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["miou"] == json.loads((b / "final.json").read_text())["miou"]
