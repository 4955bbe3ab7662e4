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


def test_evaluate_a_run_with_a_class_map(tmp_path: Path) -> None:
    import json

    import yaml

    from uda.labels import CITYSCAPES_CLASSES, CITYSCAPES_ID_TO_TRAINID

    size = "64x32"
    assert invoke("data", "synth", "--out", tmp_path / "cs", "--domain", "target", "--layout", "cityscapes",
                  "--num", 2, "--size", size).exit_code == 0  # fmt: skip
    run = tmp_path / "run"
    r = invoke("train", "source_only_synthetic", "--out", run, "--device", "cpu", *[
        a for kv in ("trainer.max_iters=2", "trainer.checkpoint_every=2", "trainer.tensorboard=false",
                     f"data.source.size={size}", f"data.target.size={size}", f"eval.size={size}", "data.batch_size=2",
                     "model.options.width=4", "data.val.options.num=2", "data.source.options.num=4",
                     "data.target.options.num=4") for a in ("--set", kv)])  # fmt: skip
    assert r.exit_code == 0, r.output
    ids: dict[int, str] = {i: "ignore" for i in [*range(34), 255]}
    ids |= {k: CITYSCAPES_CLASSES[v] for k, v in CITYSCAPES_ID_TO_TRAINID.items()}
    ids[8] = "road"  # sidewalk (label id 8) counted as road
    (tmp_path / "merge.yaml").write_text(yaml.safe_dump({"classes": "cityscapes", "ids": ids}))
    (tmp_path / "two.yaml").write_text("classes: [road, car]\nids: {7: road, 26: car}\n")
    common = ("evaluate", run, "--dataset", "cityscapes", "--root", tmp_path / "cs", "--json")
    plain = json.loads(invoke(*common).stdout)
    merged = invoke(*common, "--set", f"data.val.options.class_map={tmp_path / 'merge.yaml'}")
    assert merged.exit_code == 0, merged.output
    merged = json.loads(merged.stdout)
    assert plain["per_class"]["sidewalk"] is not None
    assert merged["per_class"]["sidewalk"] in (None, 0.0)  # no sidewalk GT left: IoU 0 (predicted) or null
    assert merged["per_class"]["road"] != plain["per_class"]["road"]
    two = invoke(*common, "--set", f"data.val.options.class_map={tmp_path / 'two.yaml'}")
    assert two.exit_code == 2 and "predicts 19 classes" in two.stderr and "has 2" in two.stderr
    # training refuses a class map that does not fit the model, before any step
    r = invoke("train", "source_only_synthetic", "--out", tmp_path / "bad", "--device", "cpu", "--set",
               "data.val.name=cityscapes", "--set", f"data.val.root={tmp_path / 'cs'}", "--set",
               f"data.val.options={{class_map: {tmp_path / 'two.yaml'}}}", "--set", "trainer.max_iters=2")
    assert r.exit_code == 2 and "model.num_classes" in r.stderr and "2 classes" in r.stderr, r.output
