"""`uda data synth` options for the condition layouts and `uda data check --option` (CliRunner)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from uda.cli import main


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_synth_condition_layout_options(tmp_path: Path) -> None:
    r = invoke("data", "synth", "--out", tmp_path / "acdc", "--layout", "acdc", "--num", 2, "--size", "32x18",
               "--conditions", "fog,rain", "--splits", "train,val", "--no-ref")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 8 synthetic target images in the acdc layout" in r.stdout
    assert sorted(p.name for p in (tmp_path / "acdc" / "rgb_anon").iterdir()) == ["fog", "rain"]
    assert sorted(p.name for p in (tmp_path / "acdc" / "rgb_anon" / "fog").iterdir()) == ["train", "val"]
    r = invoke("data", "synth", "--out", tmp_path / "dz", "--layout", "darkzurich", "--num", 1, "--size", "32x18",
               "--times", "night", "--splits", "train,val")  # fmt: skip
    assert r.exit_code == 0 and "wrote 2 synthetic" in r.stdout
    assert [p.name for p in (tmp_path / "dz" / "rgb_anon" / "train").iterdir()] == ["night"]


def test_synth_usage_errors_exit_2(tmp_path: Path) -> None:
    cases = [
        (["--layout", "gta5"], "--domain is required for --layout gta5"),
        (["--layout", "bdd100k", "--conditions", "fog"], "--conditions applies to --layout acdc only"),
        (["--layout", "acdc", "--times", "day"], "--times applies to --layout darkzurich only"),
        (["--layout", "acdc", "--conditions", "haze"], "condition haze: choose from fog, night, rain, snow"),
        (["--layout", "synthia", "--domain", "source", "--splits", "val"], "--splits does not apply"),
    ]
    for extra, message in cases:
        r = invoke("data", "synth", "--out", tmp_path / "x", "--num", 1, *extra)
        assert r.exit_code == 2, (extra, r.output)
        assert message in r.stderr and "Traceback" not in r.output
