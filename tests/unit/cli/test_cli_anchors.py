"""`python -m yolo_slim anchors`: end to end on a tiny generated dataset, the written cfg, the errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from yolo_slim.__main__ import main
from yolo_slim.darknet.anchors import used_anchors
from yolo_slim.darknet.cfg import load_cfg, parse_cfg, write_cfg
from yolo_slim.data.anchors import anchor_stats
from yolo_slim.data.formats import read_data_file
from yolo_slim.data.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("anchors") / "ds", n_train=12, n_val=2, img_size=96)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["anchors", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _training_boxes(data: Path, img_size: int) -> np.ndarray:
    """The training boxes in pixels at img_size, read straight from the label files (square images)."""
    spec = read_data_file(data)
    rows = [spec.read_labels(image)[0] for image in spec.images("train")]
    return np.concatenate(rows)[:, 3:5].astype(np.float64) * img_size


def test_fit_measure_and_write(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_cfg = tmp_path / "fitted.cfg"
    rc, out, err = _run(capsys, str(tiny_data), "--img-size", "128", "--cfg", "yolov3-tiny", "--classes", "2",
                        "--write", str(out_cfg))
    assert rc == 0, err
    lines = out.splitlines()
    boxes = _training_boxes(tiny_data, 128)
    assert lines[0] == f"{tiny_data}: {len(boxes)} boxes in 12 images at 128 px (letterboxed)"
    anchors = np.array([float(v) for v in lines[1].removeprefix("anchors  ").replace(" ", "").split(",")]).reshape(-1, 2)
    assert anchors.shape == (6, 2)
    fitted = anchor_stats(boxes, anchors)
    current = anchor_stats(boxes, np.array(used_anchors(load_cfg("yolov3-tiny"))))
    assert lines[2] == (f"fitted   BPR {fitted.bpr:.3f}   mean best IoU {fitted.mean_iou:.3f}   "
                        f"anchors/box {fitted.anchors_per_box:.2f}")
    assert lines[3].startswith(f"cfg      BPR {current.bpr:.3f}   mean best IoU {current.mean_iou:.3f}")
    assert fitted.mean_iou > current.mean_iou  # COCO's anchors at 416 px do not fit 96 px shapes measured at 128
    written = parse_cfg(out_cfg)
    for i in written.yolo_ids():
        np.testing.assert_array_equal(np.array(written.layers[i].anchors), anchors)
        assert written.layers[i].classes == 2
    assert [written.layers[i].mask for i in written.yolo_ids()] == [(3, 4, 5), (0, 1, 2)]
    assert f"wrote {out_cfg}" in out


def test_json_and_seed(tiny_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, str(tiny_data), "--img-size", "96", "--n", "3", "--json", "--seed", "7")
    assert rc == 0
    report = json.loads(out)
    assert len(report["anchors"]) == 3 and report["current"] is None and report["written"] is None
    assert report["fitted"]["boxes"] == len(_training_boxes(tiny_data, 96)) and report["seed"] == 7
    rc, again, _ = _run(capsys, str(tiny_data), "--img-size", "96", "--n", "3", "--json", "--seed", "7")
    assert json.loads(again)["anchors"] == report["anchors"]


def test_builtin_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(capsys, "builtin", "--img-size", "64", "--n", "2", "--builtin", "preset=aerial",
                        "--builtin", "n_train=2", "--builtin", "n_val=1", "--builtin", "img_size=128")
    assert rc == 0, err
    assert out.startswith(f"{tmp_path / 'data_cache' / 'builtin_aerial' / 'synthetic.data'}: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--write", "out.cfg"], "error: --write needs --cfg: the cfg to write the anchors into"),
        (["--cfg", "yolov3-tiny", "--n", "9", "--write", "out.cfg"],
         "error: --n 9: <zoo:yolov3-tiny> indexes 6 anchors with its masks; --write needs --n 6"),
        (["--builtin", "preset=aerial"], "error: --builtin options apply to DATA=builtin only"),
    ],
)
def test_bad_requests(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                      argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(capsys, str(tiny_data), "--img-size", "96", *argv)
    assert rc == 2 and out == "" and err.strip() == message
    assert not (tmp_path / "out.cfg").exists()


def test_never_writes_over_its_input(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file = write_cfg(load_cfg("yolov3-tiny"), tmp_path / "mine.cfg")
    before = cfg_file.read_text()
    rc, _, err = _run(capsys, str(tiny_data), "--img-size", "96", "--cfg", str(cfg_file), "--write", str(cfg_file))
    assert rc == 2 and "--write" in err and "that is the --cfg file itself" in err
    assert cfg_file.read_text() == before


def test_bad_data_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "yolo_slim", "anchors", str(tmp_path / "none.yaml"), "--img-size", "96"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: {tmp_path / 'none.yaml'}: dataset not found (give 'builtin', a .data file, " \
                                    "a data.yaml, a COCO .json or a dataset folder)"
