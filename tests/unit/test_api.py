"""The package-level Python API: cheap to import, the command line's configs and errors, docs/api.md runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import yolo_slim
from yolo_slim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_import_is_cheap_and_names_load_on_first_use() -> None:
    code = ("import sys, yolo_slim; heavy = [m for m in ('torch', 'omegaconf', 'hydra', 'pytorch_lightning', 'openvino') if m in sys.modules]; "
            "print(heavy); print(sorted(yolo_slim.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    heavy, names = done.stdout.splitlines()
    assert heavy == "[]"
    for name in ("compose", "train", "val", "predict", "prune", "export", "detect", "run_pipeline", "load_model", "OpenVINODetector"):
        assert repr(name) in names, name
    assert yolo_slim.OpenVINODetector.__module__ == "yolo_slim.deploy.detector"


def test_prune_and_export_are_packages_and_tasks(monkeypatch) -> None:
    import yolo_slim.prune.plan  # noqa: F401 - importing a submodule makes yolo_slim.prune the package

    assert yolo_slim.prune.plan_channel_pruning is yolo_slim.prune.plan.plan_channel_pruning
    calls = []
    monkeypatch.setattr("yolo_slim.api._run", lambda app, task, cfg, overrides: calls.append((app, cfg, overrides)) or ({}, {}))
    assert yolo_slim.prune("model.cfg=yolov4-tiny", "data=none") == ({}, {})
    assert yolo_slim.export("model.cfg=yolov4-tiny") == ({}, {})
    assert calls == [("prune", "model.cfg=yolov4-tiny", ("data=none",)), ("export", "model.cfg=yolov4-tiny", ())]


def test_compose_is_the_command_line_with_a_run_folder_under_the_current_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YOLO_SLIM_OUTPUT_ROOT", raising=False)
    cfg = yolo_slim.compose("prune", "model.cfg=yolov4-tiny", "data=none", "run_name=api")
    assert re.fullmatch(rf"{re.escape(str(tmp_path))}/outputs/prune/api/runs/\d{{4}}-\d\d-\d\d_\d\d-\d\d-\d\d", cfg.paths.output_dir)
    assert cfg.paths.root_dir == str(tmp_path) and cfg.device in ("auto", "cpu")
    pipeline = yolo_slim.compose("pipeline", "run_name=p")
    assert pipeline.paths.output_dir == str(tmp_path / "outputs" / "pipeline" / "p")
    assert yolo_slim.compose("val", "weights=a.ckpt", f"paths.output_dir={tmp_path / 'here'}").paths.output_dir == str(tmp_path / "here")
    assert not list(tmp_path.iterdir())  # composing writes nothing


@pytest.mark.parametrize(("app", "overrides", "message"), [
    ("prune", ["prune.global_percent=abc"], r"^prune.global_percent: expected a float, got 'abc'$"),
    ("train", ["data.data=my.data"], r"^data.data=my.data: this is data=my.data now"),
    ("train", ["experiment=yolov4_sparse", "data=my.data"], r"^experiment yolov4_sparse needs weights=PATH"),
    ("prune", ["model.cfg=yolov4-tiny", "prune.global_percent=0.5,0.7"], r"^prune.global_percent=0.5,0.7: a sweep composes several runs"),
    ("tarin", [], r"^unknown app 'tarin'; expected one of train, val, predict"),
])
def test_compose_refuses_what_the_command_line_refuses(app: str, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        yolo_slim.compose(app, *overrides)


def test_a_task_takes_a_config_or_overrides_not_both() -> None:
    cfg = yolo_slim.compose("prune", "model.cfg=yolov4-tiny", "data=none")
    with pytest.raises(ConfigError, match=r"prune: give a composed config or override strings, not both"):
        yolo_slim.prune(cfg, "prune.global_percent=0.5")


def _api_example() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return block


@pytest.mark.slow
def test_the_example_in_docs_api_md_runs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _api_example()], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in __import__("os").environ.items() if k not in ("YOLO_SLIM_OUTPUT_ROOT", "PROJECT_ROOT")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "logged mAP@0.5:" in done.stdout and "| class | images | labels |" in done.stdout and "['disc', 'plate']" in done.stdout
    assert (tmp_path / "outputs" / "train" / "api_demo").is_dir() and (tmp_path / "outputs" / "predict").is_dir()
