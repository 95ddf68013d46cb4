"""`python -m yolo_slim info`: the table, the JSON, the `.weights` check and the errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from yolo_slim.__main__ import main
from yolo_slim.darknet.cfg import load_cfg, write_cfg
from yolo_slim.darknet.weights import WeightsHeader


def run_info(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["info", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_table_for_a_zoo_name(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_info(capsys, "yolov4-tiny")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "<zoo:yolov4-tiny>: 38 layers"
    assert lines[1].split() == ["layer", "type", "filters", "size/strd", "input", "output", "params", "BFLOPs"]
    rows = lines[2:40]
    assert [int(r.split()[0]) for r in rows] == list(range(38))
    # darknet prints "0 conv 32 3 x 3/ 2 416 x 416 x 3 -> 208 x 208 x 32 0.150 BF"
    assert rows[0].split() == ["0", "conv", "32", "3", "x", "3/", "2", "416", "x", "416", "x", "3", "208", "x", "208", "x", "32", "928", "0.075"]
    assert rows[3].endswith("layers 2 (group 2/2)")
    assert rows[30].endswith("mask 3,4,5, stride 32")
    assert "heads      2, strides 32, 16" in lines
    assert "params     6,056,606 (6.06 M)" in lines
    assert "BFLOPs     6.910 (darknet's count)" in lines
    assert ".weights   24,251,276 bytes (23.13 MiB)" in lines


def test_classes_and_size_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_cfg(load_cfg("yolov4"), tmp_path / "yolov4.cfg")
    rc, out, _ = run_info(capsys, str(path), "--classes", "2", "--img-size", "416")
    assert rc == 0
    assert out.startswith(f"{path}: 162 layers\n")
    assert "BFLOPs     59.570 (darknet's count)" in out
    assert "input      416 x 416 x 3 (width x height x channels), 2 classes" in out
    assert "heads      3, strides 8, 16, 32" in out


def test_rectangular_cfg_prints_width_first(capsys: pytest.CaptureFixture[str], fixture_path: Callable[[str], Path]) -> None:
    rc, out, _ = run_info(capsys, str(fixture_path("every_layer.cfg")))
    assert rc == 0
    assert "input      96 x 64 x 3 (width x height x channels), 2 classes" in out
    assert out.splitlines()[2].split()[7:17] == ["96", "x", "64", "x", "3", "48", "x", "32", "x", "16"]


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_info(capsys, "yolov3-tiny", "--json", "--classes", "1")
    assert rc == 0
    data = json.loads(out)
    assert data["source"] == "<zoo:yolov3-tiny>" and data["classes"] == 1
    assert data["strides"] == [32.0, 16.0] and data["input_hw"] == [416, 416]
    assert len(data["layers"]) == 24 and data["layers"][0]["output"] == [16, 416, 416]
    assert data["bflops"] == pytest.approx(sum(layer["flops"] for layer in data["layers"]) / 1e9)
    assert "weights" not in data


def test_weights_that_fit(capsys: pytest.CaptureFixture[str], random_weights: Callable[..., Path]) -> None:
    weights = random_weights(load_cfg("yolov4-tiny", classes=2), header=WeightsHeader(0, 2, 5, 64000))
    rc, out, _ = run_info(capsys, "yolov4-tiny", "--classes", "2", "--weights", str(weights))
    assert rc == 0
    assert out.splitlines()[-1] == f"weights    {weights}: fits the cfg; version 0.2.5, trained on 64,000 images"
    rc, out, _ = run_info(capsys, "yolov4-tiny", "--classes", "2", "--weights", str(weights), "--json")
    assert json.loads(out)["weights"] == {"path": str(weights), "major": 0, "minor": 2, "revision": 5, "seen": 64000}


def test_weights_that_do_not_fit(capsys: pytest.CaptureFixture[str], random_weights: Callable[..., Path]) -> None:
    weights = random_weights(load_cfg("yolov4-tiny", classes=80))
    rc, out, err = run_info(capsys, "yolov4-tiny", "--classes", "2", "--weights", str(weights))
    assert rc == 2 and out == ""
    assert err.startswith(f"error: {weights}: file has floats left over:")
    assert err.endswith("were these weights made for another cfg or class count?\n")
    assert err.count("\n") == 1


def test_unknown_cfg(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_info(capsys, "yolov9")
    assert rc == 2 and out == ""
    assert err == "error: yolov9: no such cfg file, and not a model-zoo name (zoo: yolov3, yolov3-spp, yolov3-tiny, yolov4, yolov4-tiny, yolov4-tiny-3l)\n"


def test_bad_cfg_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text("[net]\nwidth=64\nheight=64\n[convolutional]\nfilters=4\nsize=3\nactivation=tanh\n")
    rc, _, err = run_info(capsys, str(path))
    assert rc == 2
    assert err == f"error: {path}:7: [convolutional] activation: unsupported activation 'tanh'; expected one of leaky, relu, mish, swish, logistic, linear\n"


@pytest.mark.parametrize("argv", [["yolov4", "--img-size", "0"], ["yolov4", "--classes", "two"], []])
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["info", *argv])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "yolo_slim", "info", "yolov3-tiny"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "BFLOPs     5.571 (darknet's count)" in done.stdout
