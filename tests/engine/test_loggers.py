"""The experiment loggers (uda.engine.loggers): what TensorBoard, W&B and MLflow receive from a real tiny training
(stand-in modules in sys.modules record our calls; the real packages where installed), and the one warning of a
logger that is not installed."""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import pytest
import yaml

import uda.engine.loggers as loggers
from uda import ConfigError
from uda.config import load_config
from uda.engine import train
from uda.engine.loggers import flat_metrics, logger_names


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _expected(run: Path) -> list[tuple[int, dict]]:
    """(step, metrics) of each metrics.jsonl line that has numbers: what every logger must get."""
    return [(r["global_iter"], flat_metrics(r)) for r in _records(run) if flat_metrics(r)]


class FakeWandb(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("wandb")
        self.inits: list[dict] = []
        self.logged: list[tuple[int, dict]] = []
        self.finished = 0

    def init(self, **kwargs):
        self.inits.append(kwargs)
        mod = self

        class Run:
            id = "run123"

            def log(self, metrics, step):
                mod.logged.append((step, dict(metrics)))

            def finish(self):
                mod.finished += 1

        return Run()


class FakeMlflow(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("mlflow")
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: self.calls.append((name, a, k))


def test_wandb_gets_the_config_every_log_step_and_is_finished(tmp_path, tiny, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[wandb]",
               "trainer.logger_options={wandb: {project: demo}}")
    run = tmp_path / "run"
    train(cfg, run)
    (kw,) = fake.inits
    assert kw["mode"] == "offline" and kw["dir"] == str(run) and kw["project"] == "demo" and kw["name"] == cfg.name
    assert kw["config"] == yaml.safe_load((run / "config.yaml").read_text())
    assert fake.logged == _expected(run)
    assert [s for s, _ in fake.logged] == [1, 2, 2]  # two loss lines, the final evaluation
    assert "seg/eval/miou" in fake.logged[-1][1] and "seg/loss/seg" in fake.logged[0][1]
    assert fake.finished == 1
    assert (run / "wandb_run_id").read_text() == "run123\n"
    # --resume continues the same W&B run
    train(cfg.replace(**{"trainer.max_iters": 3}), run, resume=True)
    assert fake.inits[1]["id"] == "run123" and fake.inits[1]["resume"] == "allow" and fake.finished == 2


def test_wandb_is_finished_after_an_error(tmp_path, tiny, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)

    def boom(tr):
        raise RuntimeError("stop here")

    cfg = tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[wandb]")
    with pytest.raises(RuntimeError, match="stop here"):
        train(cfg, tmp_path / "run", callbacks={"on_step_end": [boom]})
    assert fake.finished == 1


def test_mlflow_logs_into_a_file_store_in_the_run_directory(tmp_path, tiny, monkeypatch):
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    cfg = tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[mlflow]")
    run = tmp_path / "run"
    train(cfg, run)
    names = [c[0] for c in fake.calls]
    assert names[:4] == ["set_tracking_uri", "set_experiment", "start_run", "log_params"]
    assert names[-1] == "end_run" and names.count("end_run") == 1
    assert fake.calls[0][1] == ((run.resolve() / "mlruns").as_uri(),)
    assert fake.calls[1][1] == (cfg.name,)
    params = fake.calls[3][1][0]
    assert params["trainer.max_iters"] == "2" and params["recipe.name"] == "source_only"
    metrics = [(c[2]["step"], c[1][0]) for c in fake.calls if c[0] == "log_metrics"]
    assert metrics == [(s, {k.replace("/", "."): v for k, v in m.items()}) for s, m in _expected(run)]


def test_tensorboard_gets_scalars_pictures_and_the_config(tmp_path, tiny, monkeypatch):
    events: list[tuple] = []

    class SummaryWriter:
        def __init__(self, log_dir):
            events.append(("init", log_dir))

        def __getattr__(self, name):
            return lambda *a, **k: events.append((name, *a))

    tb = types.ModuleType("torch.utils.tensorboard")
    tb.SummaryWriter = SummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", tb)
    monkeypatch.setitem(sys.modules, "tensorboard", sys.modules.get("tensorboard") or types.ModuleType("tensorboard"))
    run = tmp_path / "run"
    # trainer.tensorboard=false, but tensorboard in trainer.loggers: on (the flag only adds it)
    train(tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[tensorboard]"), run)
    assert events[0] == ("init", str(run / "tensorboard"))
    assert events[1][0:2] == ("add_text", "config") and "max_iters: 2" in events[1][2]
    scalars = [(e[3], e[1], e[2]) for e in events if e[0] == "add_scalar"]
    assert scalars == [(s, k, v) for s, m in _expected(run) for k, v in m.items()]
    assert [e[1] for e in events if e[0] == "add_image"] == ["predictions"]
    assert events[-1] == ("close",)


def test_a_missing_logger_is_off_with_one_warning_naming_its_extra(tmp_path, tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails
    monkeypatch.setattr(loggers, "_WARNED", set())
    cfg = tiny("source_only_synthetic", "trainer.max_iters=1", "trainer.loggers=[wandb]")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(cfg, tmp_path / "a")
        train(cfg, tmp_path / "b")
    msgs = [str(w.message) for w in seen if "wandb" in str(w.message)]
    assert msgs == ["trainer.loggers: wandb is not installed, so it is off; install the 'wandb' extra "
                    "(pip install 'uda-seg[wandb]') or remove wandb from trainer.loggers"]
    assert (tmp_path / "b" / "final.json").is_file() and not (tmp_path / "b" / "wandb").exists()


def test_logger_names_and_config_checks():
    assert logger_names([], tensorboard=True) == ["tensorboard"]
    assert logger_names(["mlflow", "tensorboard"], tensorboard=False) == ["mlflow", "tensorboard"]
    assert load_config("source_only_synthetic").trainer.loggers == []
    with pytest.raises(ConfigError, match="unknown logger 'comet'; use any of tensorboard, wandb, mlflow"):
        load_config("source_only_synthetic", ["trainer.loggers=[comet]"])


# ------------------------------------------------------------------------------- the real packages, where installed


def test_real_tensorboard_writes_event_files(tmp_path, tiny):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    train(tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[tensorboard]"), run)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_real_wandb_offline(tmp_path, tiny, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    train(tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[wandb]"), run)
    run_id = (run / "wandb_run_id").read_text().strip()
    assert list((run / "wandb").glob(f"offline-run-*-{run_id}"))


def test_real_mlflow_file_store(tmp_path, tiny):
    pytest.importorskip("mlflow")
    run = tmp_path / "run"
    train(tiny("source_only_synthetic", "trainer.max_iters=2", "trainer.loggers=[mlflow]"), run)
    found = list((run / "mlruns").rglob("metrics/seg.loss.seg"))
    assert len(found) == 1 and len(found[0].read_text().splitlines()) == 2
