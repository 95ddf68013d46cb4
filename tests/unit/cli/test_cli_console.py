"""`yolo-slim APP ...`: every Hydra app of the top-level scripts, on the configs the package ships."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app_configs import CONF
from yolo_slim.__main__ import APP_HELP, build_parser, main
from yolo_slim.cli import apps
from yolo_slim.config.location import CONF_ENV, ROOT_ENV, package_conf_dir


@pytest.fixture(autouse=True)
def _restore_locations(monkeypatch) -> None:
    """run_app sets PROJECT_ROOT and YOLO_SLIM_CONF_DIR for what it composes; undo that after each test."""
    for name in (ROOT_ENV, CONF_ENV):
        monkeypatch.setenv(name, "unset-by-test")
        monkeypatch.delenv(name)


def test_every_app_of_the_scripts_is_a_command() -> None:
    assert tuple(APP_HELP) == apps.APPS == ("train", "val", "predict", "prune", "export", "detect", "pipeline")
    usage = build_parser().format_help()
    for name in (*apps.APPS, "info", "graph", "sparsity", "anchors"):
        assert name in usage, name


def test_the_package_carries_the_configs_the_scripts_use() -> None:
    conf = package_conf_dir()
    assert conf.resolve() == CONF.resolve()  # this checkout's editable install maps yolo_slim.conf onto conf/
    assert {p.stem for p in conf.glob("*.yaml")} == set(apps.APPS)


def test_a_dry_run_composes_the_same_config_as_the_script(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "experiment=yolov4_baseline", "data=my.data", "device=cpu", "dry_run=true"]) == 0
    assert capsys.readouterr().out.strip() == "dry run: yolo-slim train config is valid (data=my.data, img_size=416, device=cpu)"
    assert main(["val", "weights=best.ckpt", "dry_run=true"]) == 0
    assert "dry run: yolo-slim val config is valid" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_a_misuse_is_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["predict", "weights=m.xml"])
    assert done.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: predict.py needs source=SOURCE")


def test_runs_go_under_the_current_directory_and_ddp_relaunches_the_whole_command(tmp_path: Path, monkeypatch) -> None:
    seen = {}

    def record(cfg) -> None:
        seen.update(argv=list(sys.argv), output_dir=str(cfg.paths.output_dir), conf_dir=str(cfg.paths.conf_dir), model=str(cfg.model.cfg))

    monkeypatch.setitem(apps.TASKS, "train", record)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/yolo-slim", "train", "run_name=here"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YOLO_SLIM_OUTPUT_ROOT", raising=False)
    assert main(["train", "run_name=here"]) == 0
    assert seen["argv"] == ["/venv/bin/yolo-slim", "train", "run_name=here"]  # what Lightning's DDP launcher re-executes
    assert Path(seen["output_dir"]).parent == tmp_path / "outputs" / "train" / "here" / "runs"
    assert Path(seen["conf_dir"]) == package_conf_dir().resolve()
    assert Path(seen["model"]).is_file()  # the demo model's cfg is read from the configs, not from the current directory


def test_an_export_from_another_directory_writes_there(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YOLO_SLIM_OUTPUT_ROOT", raising=False)
    monkeypatch.setattr(sys, "argv", ["yolo-slim"])
    assert main(["export", "model.cfg=yolov4-tiny", "model.classes=2", "img_size=64", "export.formats=[onnx]",
                 "export.exporter=torchscript", "run_name=tiny"]) == 0
    (onnx,) = (tmp_path / "outputs" / "export" / "tiny" / "runs").glob("*/model.onnx")
    assert (onnx.parent / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]
