"""`predict` with the hand-set square detector (conftest): it finds white squares where they are.

The oracle is the drawn square itself: each label line must be the square's box,
normalised, and each JSON box the same in pixels. `TorchDetector` is checked against
the network run by hand on an image padded here with NumPy.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import best_iou, build_square_model, square_frame

from app_configs import compose_config
from yolo_slim.darknet.cfg import write_cfg_text
from yolo_slim.deploy.models import open_detector
from yolo_slim.deploy.predictions import yolo_label_lines
from yolo_slim.deploy.torch_detector import TorchDetector
from yolo_slim.errors import ConfigError, DeployError
from yolo_slim.io.checkpoint import write_model_checkpoint
from yolo_slim.ops.nms import non_max_suppression
from yolo_slim.predict_task import predict

BOX_A = (40, 30, 72, 62)      # in a 128 x 128 image
BOX_B = (100, 40, 164, 104)   # in a 256 x 192 image: 32 px at the network's 128 px


@pytest.fixture
def square(tmp_path: Path):
    model, cfg_path, weights = build_square_model(tmp_path)
    return {"model": model, "cfg": cfg_path, "weights": weights, "tmp": tmp_path}


def _predict(square, *overrides: str, out: str = "run"):
    cfg = compose_config("predict", f"model.cfg={square['cfg']}", f"weights={square['weights']}", "device=cpu",
                         f"paths.output_dir={square['tmp'] / out}", *overrides)
    return predict(cfg)


def _label_box(line: str, hw: tuple[int, int]) -> tuple[float, ...]:
    cls, cx, cy, w, h, score = (float(v) for v in line.split())
    H, W = hw
    return (cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H


def test_a_folder_gives_annotated_images_yolo_labels_and_json(square, capsys) -> None:
    folder = square["tmp"] / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), square_frame((128, 128), BOX_A))
    cv2.imwrite(str(folder / "b.jpg"), square_frame((192, 256), BOX_B))
    metrics, artifacts = _predict(square, f"source={folder}", "names=[square]")
    run = artifacts["run_dir"]
    assert sorted(p.name for p in run.iterdir()) == ["a.png", "b.jpg", "labels", "predictions.json"]  # images, not an .avi
    assert metrics["predict/images"] == 2 and metrics["predict/frames"] == 0
    for name, hw, box in (("a", (128, 128), BOX_A), ("b", (192, 256), BOX_B)):
        lines = (run / "labels" / f"{name}.txt").read_text().splitlines()
        assert lines and all(line.split()[0] == "0" and len(line.split()) == 6 for line in lines)
        assert max(best_iou(np.array([_label_box(line, hw)]), box) for line in lines) > 0.5, name
    record = json.loads(artifacts["json"].read_text())
    assert record["names"] == ["square"] and len(record["predictions"]) == 2
    b = next(p for p in record["predictions"] if p["file"].endswith("b.jpg"))
    assert (b["width"], b["height"]) == (256, 192) and b["detections"][0]["name"] == "square"
    for det, line in zip(b["detections"], (run / "labels" / "b.txt").read_text().splitlines()):
        assert _label_box(line, (192, 256)) == pytest.approx(det["box"], abs=0.01)  # the same box, normalised
    out = capsys.readouterr().out
    assert "predict: 2 images" in out and str(run / "labels") in out and str(artifacts["json"]) in out


def test_torch_detector_maps_boxes_back_through_the_letterbox(square) -> None:
    image = square_frame((64, 128), (48, 16, 80, 48))  # letterboxed to 128 x 128: 32 rows of padding on top
    detector = TorchDetector(square["model"], ["square"], conf_thres=0.3)
    padded = np.full((128, 128, 3), 114, np.uint8)
    padded[32:96] = image
    tensor = torch.from_numpy(padded[:, :, ::-1].transpose(2, 0, 1).copy()).float()[None] / 255
    with torch.no_grad():
        expected = non_max_suppression(square["model"](tensor), 0.3, 0.45)[0].numpy()
    expected[:, [1, 3]] -= 32
    got = detector.detect(image)
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(got, np.clip(expected, 0, None), atol=1e-4)
    assert best_iou(got, (48, 16, 80, 48)) > 0.5


def test_a_video_gives_an_annotated_video_and_labels_per_frame(square) -> None:
    video = square["tmp"] / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (128, 128))
    for i in range(5):
        writer.write(square_frame((128, 128), (20 + 10 * i, 40, 52 + 10 * i, 72)))
    writer.release()
    metrics, artifacts = _predict(square, f"source={video}", "max_frames=3")
    out = artifacts["video_0"]
    assert out.name == "clip.mp4" and metrics["predict/frames"] == 3
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    assert sorted(p.name for p in artifacts["labels"].iterdir()) == [f"clip_{i:06d}.txt" for i in range(3)]
    frames = json.loads(artifacts["json"].read_text())["predictions"]
    assert [f["frame"] for f in frames] == [0, 1, 2] and all(f["detections"] for f in frames)


def test_sources_with_the_same_image_name_do_not_overwrite_each_other(square) -> None:
    for folder in ("one", "two"):
        (square["tmp"] / folder).mkdir()
        cv2.imwrite(str(square["tmp"] / folder / "img.png"), square_frame((128, 128), BOX_A))
    _, artifacts = _predict(square, f"source=[{square['tmp'] / 'one'},{square['tmp'] / 'two' / 'img.png'}]", "output.json=false",
                            "output.label_scores=false")
    run = artifacts["run_dir"]
    assert sorted(p.name for p in run.iterdir()) == ["img.png", "img_2.png", "labels"]
    assert all(len(line.split()) == 5 for line in (run / "labels" / "img_2.txt").read_text().splitlines())


def test_a_bad_source_stops_before_anything_is_written(square) -> None:
    cv2.imwrite(str(square["tmp"] / "a.png"), square_frame((128, 128), BOX_A))
    with pytest.raises(DeployError, match=r"nowhere\.mp4: no such video file or image folder"):
        _predict(square, f"source=[{square['tmp'] / 'a.png'},{square['tmp'] / 'nowhere.mp4'}]")
    with pytest.raises(DeployError, match=r"empty: folder holds no images"):
        (square["tmp"] / "empty").mkdir()
        _predict(square, f"source={square['tmp'] / 'empty'}")
    assert not (square["tmp"] / "run").exists()


def test_class_names_come_from_names_or_the_checkpoints_data_set(square) -> None:
    with pytest.raises(ConfigError, match=r"names: 2 class names \(a, b\) for a model with 1 classes"):
        _predict(square, f"source={square['tmp']}", "names=[a,b]")
    ckpt = write_model_checkpoint(square["tmp"] / "square.ckpt", square["model"].state_dict(), write_cfg_text(square["model"].cfg))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["datamodule_hyper_parameters"] = {"data": "builtin", "builtin": {"preset": "aerial"}}  # what a training run records
    torch.save(state, ckpt)
    cv2.imwrite(str(square["tmp"] / "a.png"), square_frame((128, 128), BOX_A))
    cfg = compose_config("predict", f"weights={ckpt}", f"source={square['tmp'] / 'a.png'}", "device=cpu",
                         f"paths.output_dir={square['tmp'] / 'ckpt'}")
    _, artifacts = predict(cfg)
    record = json.loads(artifacts["json"].read_text())
    assert record["names"] == ["vehicle"] and record["predictions"][0]["detections"][0]["name"] == "vehicle"


def test_label_lines_are_normalised_centre_and_size() -> None:
    dets = np.array([[10, 20, 50, 60, 0.9, 1], [0, 0, 200, 100, 0.5, 0]], np.float32)
    assert yolo_label_lines(dets, (100, 200)) == ["1 0.150000 0.400000 0.200000 0.400000 0.9000",
                                                  "0 0.500000 0.500000 1.000000 1.000000 0.5000"]
    assert yolo_label_lines(dets[:0], (100, 200)) == []


@pytest.mark.openvino
def test_an_ir_predicts_with_its_own_names(square_ir: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), square_frame((128, 128), BOX_A))
    detector = open_detector(str(square_ir), device="cpu", conf_thres=0.3)
    assert detector.names == ["square"] and best_iou(detector.detect(square_frame((128, 128), BOX_A)), BOX_A) > 0.5
    cfg = compose_config("predict", f"weights={square_ir}", f"source={tmp_path / 'a.png'}", "device=cpu", f"paths.output_dir={tmp_path / 'run'}")
    _, artifacts = predict(cfg)
    assert (tmp_path / "run" / "a.png").is_file()
    assert json.loads(artifacts["json"].read_text())["predictions"][0]["detections"][0]["name"] == "square"
