"""Command lines as users type them.

- Every `python X.py ...` example in README.md, docs/*.md and the comments of conf/
  composes and validates (`dry_run=true`; the pipeline's also every stage's config), so
  the documentation cannot drift from the configs.
- Every misuse of issue #11 gives exit status 2 and one `error:` line, in-process
  through the entry function and once per entry script in its own process (no
  traceback), before any run dir is made.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from app_configs import CONF, ROOT
from yolo_slim.cli.apps import APPS, run_app
from yolo_slim.config.command import check_command

_COMMAND = re.compile(rf"^\s*(?:#\s*)?(?:\$\s*)?(?:python ({'|'.join(APPS)})\.py|yolo-slim ({'|'.join(APPS)}))\b(.*)$")


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(where, app, argv) of every example (`python X.py ...` or `yolo-slim X ...`): README.md, docs/*.md, and comments in conf/."""
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(CONF.rglob("*.yaml"))]
    found = []
    for path in sources:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            match = _COMMAND.match(lines[i])
            start = i
            if match:
                text = match.group(3)
                while text.rstrip().endswith("\\") and i + 1 < len(lines):  # a `\` continuation
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].lstrip("# ").strip()
                argv = shlex.split(text, comments=True)
                found.append((f"{path.relative_to(ROOT)}:{start + 1}", match.group(1) or match.group(2), argv))
            i += 1
    return found


COMMANDS = documented_commands()


def test_the_documents_have_examples_of_every_app() -> None:
    assert {app for _, app, _ in COMMANDS} == set(APPS)
    assert len(COMMANDS) >= 40
    assert not [w for w, _, argv in COMMANDS if "..." in argv], "an example with '...' cannot be checked; write it out"


@pytest.mark.parametrize(("where", "app", "argv"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_documented_command_composes_and_validates(where: str, app: str, argv: list[str], monkeypatch) -> None:
    # devices are there or not at run time; the documents may show device=gpu
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: True)
    monkeypatch.setattr("yolo_slim.config.devices._openvino_devices", lambda: ["CPU", "GPU"])
    monkeypatch.setenv("PROJECT_ROOT", str(ROOT))
    checked = check_command(app, [*argv, "dry_run=true"], CONF)
    assert checked.checked and checked.dry_run, where
    if app == "pipeline":
        from yolo_slim.pipeline import run_pipeline

        run_pipeline(checked.cfg)  # a dry run: every stage's task config composes and validates


def test_documented_inspection_commands_parse() -> None:
    """`python -m yolo_slim ...` examples parse with its own argument parser (its size flag is --img-size, like img_size=)."""
    from yolo_slim.__main__ import build_parser

    pattern = re.compile(r"python -m yolo_slim ([^`\n]+)")
    examples = [m.group(1) for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] for m in pattern.finditer(path.read_text())]
    assert len(examples) >= 3
    for text in examples:
        build_parser().parse_args(shlex.split(text, comments=True))


MISUSES = [
    ("prune", ["prune.global_percent=abc"], "error: prune.global_percent: expected a float, got 'abc'"),
    ("export", ["weights=best.weights"], "error: export.py needs model.cfg=NAME_OR_PATH (a zoo name or .cfg file), or weights=PATH.ckpt (it carries its cfg)"),
    ("detect", ["weights=EXPORT/model.xml"], "error: detect.py needs source=SOURCE (a video file, image folder, camera index or stream URL; "
                                             "several: source=[a.mp4,b.mp4])"),
    ("prune", ["model.cfg=yolov4-tiny", "device=gpu"], "error: device=gpu but no CUDA device is visible; use device=cpu or device=auto"),
    ("train", ["experiment=yolov4_baseline"], "error: experiment yolov4_baseline needs data=PATH (your .data file or dataset folder)"),
    ("train", ["experiment=yolov4_sparse", "data=my.data"], "error: experiment yolov4_sparse needs weights=PATH (the baseline's best.weights or last.ckpt)"),
    ("pipeline", ["experiment=yolov4_pipeline"], "error: experiment yolov4_pipeline needs data=PATH (your .data file or dataset folder)"),
    ("train", ["data.data=my.data"], "error: data.data=my.data: this is data=my.data now (README: Changes for existing run folders and scripts)"),
    ("pipeline", ["data.data=my.data"], "error: data.data=my.data: this is data=my.data now (README: Changes for existing run folders and scripts)"),
    ("pipeline", ["dataset=my.data"], "error: dataset=my.data: this is data=my.data now (README: Changes for existing run folders and scripts)"),
    ("train", ["data=x.data", "data.batch_size=8"], "error: data.batch_size=8: this is loader.batch_size=8 now (README: Changes for existing run folders and scripts)"),
    ("val", [], "error: val.py needs weights=PATH (a .ckpt, a .weights with model.cfg=, or an OpenVINO model.xml)"),
    ("val", ["model.cfg=yolov4-tiny", "weights=best.weights"], "error: val.py needs data=builtin or data=PATH (a .data file, data.yaml, "
     "COCO json or dataset folder); only a training run's .ckpt knows the data set it was trained on"),
    ("val", ["weights=best.weights", "data=my.data"], "error: val.py needs model.cfg=NAME_OR_PATH with weights=PATH.weights, or "
     "weights=PATH.ckpt (it carries its cfg), or weights=PATH/model.xml (an OpenVINO IR)"),
    ("predict", ["weights=EXPORT/model.xml"], "error: predict.py needs source=SOURCE (an image, image folder, video file, camera index "
     "or stream URL; several: source=[a.jpg,b.mp4])"),
    ("predict", ["weights=EXPORT/model.xml", "model.cfg=yolov4", "source=a.jpg"],
     "error: weights=EXPORT/model.xml is an OpenVINO IR: it is its own model; drop model.cfg and model.classes"),
    ("predict", ["model.cfg=yolov4-tiny", "weights=x.weights", "source=a.jpg", "device=gpu"], "error: device=gpu but no CUDA device is visible; use device=cpu or device=auto"),
]


@pytest.mark.parametrize(("app", "argv", "line"), MISUSES, ids=[f"{a} {' '.join(v)}" for a, v, _ in MISUSES])
def test_misuse_is_one_line_and_exit_2(app: str, argv: list[str], line: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: False)
    monkeypatch.setattr(sys, "argv", [f"{app}.py"])
    with pytest.raises(SystemExit) as exit_info:
        run_app(app, CONF, [*argv, f"paths.output_root={tmp_path}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]
    assert not (tmp_path / "outputs").exists()  # refused before Hydra made a run dir


def test_yolov4_baseline_on_a_cpu_machine_composes_with_device_auto(monkeypatch, capsys) -> None:
    """It used to die with "No supported gpu backend found!"; now it runs on the CPU (slowly) when there is no GPU."""
    monkeypatch.setattr("yolo_slim.config.devices._cuda_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    run_app("train", CONF, ["experiment=yolov4_baseline", "data=my.data", "dry_run=true"])
    assert capsys.readouterr().out.strip() == "dry run: train.py config is valid (data=my.data, img_size=416, device=auto)"


def test_a_multirun_over_data_sets_checks_each(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py"])
    run_app("train", CONF, ["-m", "data=a.data,b.data", "dry_run=true"])
    assert "dry run: train.py config is valid (data=a.data" in capsys.readouterr().out


def test_export_runs_land_under_the_output_root(tmp_path: Path, monkeypatch) -> None:
    """The same run-folder layout as train and prune, wherever the command is launched from."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["export.py"])
    run_app("export", CONF, ["model.cfg=yolov4-tiny", "model.classes=2", "img_size=64", "export.formats=[onnx]", "export.exporter=torchscript",
                             f"paths.output_root={tmp_path / 'root'}", "run_name=tiny"])
    (onnx,) = (tmp_path / "root" / "outputs" / "export" / "tiny" / "runs").glob("*/model.onnx")
    assert (onnx.parent / "meta.json").is_file() and (onnx.parent / "export.log").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # nothing written under the current directory


ENTRY_MISUSES = {
    "train": ["data.data=my.data"],
    "val": [],
    "predict": ["weights=model.xml"],
    "prune": ["prune.global_percent=abc"],
    "export": [],
    "detect": ["weights=model.xml"],
    "pipeline": ["train_overrides=[trainer=ddp,trainer.devices=4]"],
}


@pytest.mark.parametrize("app", APPS)
def test_entry_script_misuse_is_exit_2_without_traceback(app: str, tmp_path: Path) -> None:
    env = {**os.environ, "YOLO_SLIM_OUTPUT_ROOT": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / f"{app}.py"), *ENTRY_MISUSES[app]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "outputs").exists() and not list(tmp_path.iterdir())
