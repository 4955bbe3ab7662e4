"""The foundation: version, registry, typed configs, safe and atomic IO."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import tomllib
import torch
import yaml

import uda
from uda._io import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    dump_yaml,
    load_checkpoint,
    load_yaml,
    save_checkpoint,
)
from uda._registry import Registry, registry
from uda.config import (
    ExperimentConfig,
    apply_overrides,
    from_dict,
    get_builtin,
    load_config,
    merge,
    parse_scalar,
    parse_size,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------- package


def test_version_is_the_one_in_pyproject() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "uda.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", uda.__version__)


def test_distribution_name_license_citation_changelog() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "uda-seg"  # "uda" and "pyuda" on PyPI are other projects
    assert meta["project"]["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "Apache-2.0" and cff["version"] == uda.__version__
    mlfa = cff["references"][0]
    assert [a["given-names"] + " " + a["family-names"] for a in mlfa["authors"]] == [
        "Bin Zhang", "Shengjie Zhao", "Rongqing Zhang"]
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()
    import fnmatch

    data = meta["tool"]["setuptools"]["package-data"]["uda"]
    assert "py.typed" in data and (ROOT / "uda" / "py.typed").is_file()
    for rel in ("config/presets/x.yaml", "configs/x.yaml", "config/x.yaml"):  # wherever the configs live
        assert any(fnmatch.fnmatch(rel, pat) for pat in data), rel


@pytest.mark.slow
def test_wheel_ships_every_package_configs_and_py_typed(tmp_path: Path) -> None:
    """A non-editable build: the wheel holds every subpackage, the presets, py.typed and the `uda` script."""
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "runs", "build", "*.egg-info", "__pycache__",
                                                             "site", ".venv"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("uda_seg-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "uda/py.typed" in names and "uda/__init__.py" in names
    packages = {p.relative_to(ROOT).parent.as_posix() for p in (ROOT / "uda").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names  # every subpackage, configs included
    assert any(n.startswith("uda/config") and n.endswith("presets.py") for n in names)
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    meta = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "Name: uda-seg" in meta and "License" in meta
    assert "uda = uda.cli:main" in zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert any(n.endswith("LICENSE") for n in names)


def test_every_contract_name_is_registered() -> None:
    want = {
        "model": ["deeplabv2"],
        "translator": ["cyclegan", "fda", "identity"],
        "discriminator": ["fc", "patchgan"],
        "aligner": ["output", "entropy", "multilevel", "minent"],
        "dataset": ["gta5", "synthia", "cityscapes", "folder", "synthetic"],
        "recipe": ["source_only", "adaptsegnet", "advent", "minent", "cyclegan", "fda", "mlfa"],
        "config": ["mlfa_synthetic", "source_only_synthetic"],
    }
    for kind, names in want.items():
        missing = set(names) - set(uda.list_components(kind))
        assert not missing, f"{kind}: {missing} not registered"


# ----------------------------------------------------------------------------------------- registry


@pytest.fixture
def temp_component():
    """Register a throwaway loss for the duration of a test."""

    def factory(*, alpha: float = 1.0, beta: int = 2):
        """A test component."""
        return ("built", alpha, beta)

    reg = registry("loss")
    reg.add("zz_test_component", factory)
    yield "zz_test_component"
    reg._entries.pop("zz_test_component")
    reg._docs.pop("zz_test_component")


def test_create_builds_and_drops_none_kwargs(temp_component: str) -> None:
    assert uda.create("loss", temp_component, alpha=3.0) == ("built", 3.0, 2)
    # None never overrides the component's own default (CLI defaults are None)
    assert uda.create("loss", temp_component, alpha=None, beta=None) == ("built", 1.0, 2)


def test_create_rejects_unknown_kwargs_with_suggestion(temp_component: str) -> None:
    with pytest.raises(uda.UdaError, match=r"takes no argument\(s\) 'alpah'.*Did you mean 'alpha'.*Accepted: alpha, beta"):
        uda.create("loss", temp_component, alpah=1.0)


def test_unknown_name_lists_valid_ones_and_suggests_closest(temp_component: str) -> None:
    with pytest.raises(ValueError) as info:
        uda.create("loss", "zz_test_componnt")
    msg = str(info.value)
    assert isinstance(info.value, uda.UdaError)
    assert "Did you mean 'zz_test_component'?" in msg
    assert "Available:" in msg and all(n in msg for n in uda.list_components("loss"))
    assert "\n" not in msg


def test_unknown_kind_suggests_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown component kind 'modl'. Did you mean 'model'\?"):
        uda.create("modl", "deeplabv2")
    with pytest.raises(ValueError, match="Available: model, translator"):
        uda.list_components("nope")


def test_list_components_patterns(temp_component: str) -> None:
    assert uda.list_components("loss", "zz_test_*") == [temp_component]
    assert uda.list_components("loss", "zz_?est_component") == [temp_component]
    assert uda.list_components("loss", "no_such_*") == []
    everything = uda.list_components()
    assert f"loss/{temp_component}" in everything
    assert everything == sorted(everything)
    assert all("/" in n and n.split("/")[0] in uda.KINDS for n in everything)
    assert uda.list_components(None, "zz_test_*") == [f"loss/{temp_component}"]
    names = uda.list_components("loss")
    assert names == sorted(names)


def test_registry_duplicates_raise() -> None:
    reg = Registry("thing")

    @reg.register("a")
    def first():
        """First line of the doc.

        More.
        """

    with pytest.raises(KeyError, match="'a' is registered twice"):
        reg.register("a")(lambda: None)
    assert reg.get("a") is first  # the first registration survives
    assert reg.describe("a") == "First line of the doc."
    assert "a" in reg and len(reg) == 1


def test_registry_decorator_uses_name_by_default() -> None:
    reg = Registry("thing")

    @reg.register()
    class MyThing:
        pass

    assert reg.names() == ["MyThing"]


# ----------------------------------------------------------------------------------------- typed configs


@dataclass
class _Inner:
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"
    size: tuple[int, int] = (1, 2)
    path: str | None = None


@dataclass
class _Outer:
    steps: int = 10
    flag: bool = False
    inner: _Inner = field(default_factory=_Inner)
    tags: list[str] = field(default_factory=list)
    opts: dict[str, int] = field(default_factory=dict)


def test_from_dict_nested_and_coercions() -> None:
    obj = from_dict(_Outer, {"steps": 3, "inner": {"lr": 1, "size": [4, 5], "mode": "b"}, "tags": ["x"], "opts": {"k": 1}})
    assert obj == _Outer(steps=3, inner=_Inner(lr=1.0, mode="b", size=(4, 5)), tags=["x"], opts={"k": 1})
    assert isinstance(obj.inner.lr, float) and isinstance(obj.inner.size, tuple)
    assert to_dict(obj) == {
        "steps": 3, "flag": False, "inner": {"lr": 1.0, "mode": "b", "size": [4, 5], "path": None},
        "tags": ["x"], "opts": {"k": 1},
    }
    assert from_dict(_Outer, to_dict(obj)) == obj
    # exponent notation that PyYAML leaves as a string is still a float
    assert from_dict(_Inner, {"lr": "1e-4"}).lr == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stepz": 1}, r"unknown config key 'stepz'. Did you mean 'steps'\? Valid keys here: steps, flag, inner"),
        ({"inner": {"lrr": 1.0}}, r"unknown config key 'inner.lrr'. Did you mean 'inner.lr'\?"),
        ({"steps": "ten"}, r"steps: expected an integer, got 'ten' \(str\)"),
        ({"steps": True}, r"steps: expected an integer, got True"),
        ({"steps": 1.5}, r"steps: expected an integer, got 1.5"),
        ({"flag": "yes"}, r"flag: expected true or false, got 'yes'"),
        ({"inner": {"mode": "c"}}, r"inner.mode: 'c' is not one of 'a', 'b'"),
        ({"inner": {"size": [1, 2, 3]}}, r"inner.size: expected 2 values, got 3"),
        ({"inner": {"path": 3}}, r"inner.path: expected str \| None, got 3"),
        ({"inner": 5}, r"inner: expected a mapping for _Inner, got 5"),
        ({"tags": "x"}, r"tags: expected a list, got 'x'"),
        ({"opts": {"k": "v"}}, r"opts.k: expected an integer, got 'v'"),
    ],
)
def test_from_dict_rejects_with_clear_message(data: dict, message: str) -> None:
    with pytest.raises(uda.ConfigError, match=message) as info:
        from_dict(_Outer, data)
    assert "\n" not in str(info.value)


def test_apply_overrides_and_scalars() -> None:
    data = {"a": {"b": 1}, "c": 2}
    apply_overrides(data, ["a.b=null", "a.new.deep=true", "c=1.5", "d=hello", "e=[1, 2]", "f="])
    assert data == {"a": {"b": None, "new": {"deep": True}}, "c": 1.5, "d": "hello", "e": [1, 2], "f": ""}
    assert parse_scalar("3") == 3 and parse_scalar("off") is False and parse_scalar("x: [") == "x: ["
    with pytest.raises(uda.ConfigError, match="is not KEY=VALUE"):
        apply_overrides({}, ["trainer.max_iters"])
    with pytest.raises(uda.ConfigError, match="empty key"):
        apply_overrides({}, ["=3"])
    with pytest.raises(uda.ConfigError, match="'c' is a value, not a section"):
        apply_overrides({"c": 2}, ["c.d=1"])


def test_merge_is_recursive_and_copies() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    out = merge(base, {"a": {"c": 3}, "d": [2]})
    assert out == {"a": {"b": 1, "c": 3}, "d": [2]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size("64X32") == (64, 32)
    assert parse_size(None) is None
    for bad in ("1280", "0x10", "axb", "-1x5"):
        with pytest.raises(uda.ConfigError, match="is not a size WxH"):
            parse_size(bad)


def test_builtin_configs_exist_and_follow_the_naming() -> None:
    names = uda.list_components("config")
    assert "mlfa_synthetic" in names
    recipes = set(uda.list_components("recipe"))
    for n in names:
        recipe = get_builtin(n).recipe.name
        assert recipe in recipes, f"config {n} uses unknown recipe {recipe}"


@pytest.mark.parametrize("name", uda.list_components("config"))
def test_every_builtin_config_round_trips_through_yaml(name: str, tmp_path: Path) -> None:
    cfg = load_config(name)
    assert cfg.name == name
    text = cfg.to_yaml()
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    again = load_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert again == cfg
    assert yaml.safe_load(text) == cfg.to_dict()


def test_load_config_overrides_and_messages(tmp_path: Path) -> None:
    cfg = load_config("source_only_synthetic", ["trainer.max_iters=7", "optim.generator.lr=1e-3", "model.pretrained=null"])
    assert cfg.trainer.max_iters == 7 and cfg.optim.generator.lr == pytest.approx(1e-3)
    assert cfg.model.pretrained is None
    with pytest.raises(uda.ConfigError, match=r"unknown config key 'trainer.max_iter'. Did you mean 'trainer.max_iters'\?"):
        load_config("source_only_synthetic", ["trainer.max_iter=5"])
    with pytest.raises(uda.ConfigError, match=r"trainer.max_iters: expected an integer, got 'many'"):
        load_config("source_only_synthetic", ["trainer.max_iters=many"])
    with pytest.raises(uda.UdaError, match=r"unknown config 'mlfa_synthtic'. Did you mean 'mlfa_synthetic'\?"):
        load_config("mlfa_synthtic")
    with pytest.raises(uda.ConfigError, match="no such YAML file"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_with_base_and_recipe_switch(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("_base_: mlfa_synthetic\nname: mine\ntrainer:\n  max_iters: 3\n")
    cfg = load_config(path)
    base = load_config("mlfa_synthetic")
    assert cfg.name == "mine" and cfg.trainer.max_iters == 3
    assert cfg.recipe == base.recipe and cfg.model == base.model
    # switching recipe by override keeps only the keys the new recipe knows
    switched = load_config("mlfa_synthetic", ["recipe.name=source_only"])
    assert switched.recipe.name == "source_only"
    assert type(switched.recipe) is type(load_config("source_only_synthetic").recipe)


def test_experiment_replace_is_a_deep_copy() -> None:
    cfg = ExperimentConfig()
    other = cfg.replace(**{"trainer.max_iters": 5, "data.source.size": "64x32"})
    assert other.trainer.max_iters == 5 and other.data.source.size == "64x32"
    assert cfg.trainer.max_iters == ExperimentConfig().trainer.max_iters
    assert dataclasses.asdict(cfg) == dataclasses.asdict(ExperimentConfig())


# ----------------------------------------------------------------------------------------- safe, atomic IO


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert _temp_files(target.parent) == []


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError, match="crash"), atomic_open(target, "w") as f:
        f.write("half-written")
        raise RuntimeError("crash")
    assert target.read_text() == "good"
    assert _temp_files(tmp_path) == []
    fresh = tmp_path / "never.txt"
    with pytest.raises(KeyboardInterrupt), atomic_open(fresh, "w") as f:
        f.write("x")
        raise KeyboardInterrupt
    assert not fresh.exists() and _temp_files(tmp_path) == []


def test_checkpoint_round_trip_with_checksum(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "iteration": 3, "config": {"name": "x"}}
    digest = save_checkpoint(state, path)
    assert (tmp_path / "ck.pt.sha256").read_text().strip() == digest
    loaded = load_checkpoint(path)
    assert loaded["iteration"] == 3 and loaded["config"] == {"name": "x"}
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert _temp_files(tmp_path) == []


def test_checksum_mismatch_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint({"w": torch.zeros(100)}, path)
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(uda.CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_truncated_and_missing_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    torch.save({"w": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(uda.CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(uda.CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pt")


class _Evil:
    """A pickle payload that writes a file when unpickled."""

    def __init__(self, src: Path, dst: Path) -> None:
        self.src, self.dst = str(src), str(dst)

    def __reduce__(self):
        return (shutil.copyfile, (self.src, self.dst))


def test_load_checkpoint_refuses_code_and_never_runs_it(tmp_path: Path) -> None:
    src = tmp_path / "payload.txt"
    src.write_text("pwned")
    victim = tmp_path / "victim.txt"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "x": _Evil(src, victim)}, path)
    # the payload is real: an unsafe load writes the file
    torch.load(path, weights_only=False)
    assert victim.read_text() == "pwned"
    victim.unlink()
    with pytest.raises(uda.CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not victim.exists()


def test_safetensors_checkpoints(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(2, 2)}, str(path))
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2, 2))
    path.write_bytes(b"garbage")
    with pytest.raises(uda.CheckpointError, match="cannot read safetensors"):
        load_checkpoint(path)


def test_safe_yaml_refuses_python_tags(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    path = tmp_path / "evil.yaml"
    path.write_text(f"trainer: !!python/object/apply:os.mkdir ['{victim}']\n")
    with pytest.raises(uda.ConfigError, match="invalid YAML"):
        load_yaml(path)
    with pytest.raises(uda.ConfigError, match="invalid YAML"):
        load_config(path)
    assert not victim.exists()
    assert not os.path.exists(victim)


def test_yaml_round_trip_and_syntax_errors(tmp_path: Path) -> None:
    obj = {"b": 1, "a": [1, 2], "c": {"d": None, "e": "ü"}}
    text = dump_yaml(obj)
    assert text.index("b:") < text.index("a:")  # insertion order kept
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_yaml(path) == obj
    path.write_text("a: [1, 2\n")
    with pytest.raises(uda.ConfigError, match=r"x.yaml: line \d+, column \d+: invalid YAML .*fix the syntax"):
        load_yaml(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(uda.ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_no_shipped_module_exceeds_400_lines():
    """Modules stay small enough to read whole (the engine split: trainer.py ≤ 300 lines, every file ≤ 400)."""
    root = Path(uda.__file__).parent
    sizes = {p.relative_to(root).as_posix(): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 400} == {}
    assert sizes["engine/trainer.py"] <= 300


def test_the_concepts_page_lists_every_kind() -> None:
    """docs/concepts.md's kinds table has one row per kind of the registry, in the registry's order."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()
    table = text[text.index("| kind | what it is | examples |"):].split("\n\n")[0]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]]
    assert rows == list(uda.KINDS)
