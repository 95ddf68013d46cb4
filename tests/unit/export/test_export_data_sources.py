"""Export's evaluation data in every dataset form: names, calibration and labelled validation images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from app_configs import compose_config
from yolo_slim.deploy.evaluate import evaluate_detector
from yolo_slim.export.task import _data_sources as _export_data_sources


def _data_sources(data: str | None, data_dir: str, builtin: dict | None = None):
    """export's data resolution for `data=` with the built-in data under `data_dir`."""
    values = {"data": data, "paths": {"data_dir": data_dir}, "builtin": builtin or {}}
    return _export_data_sources(compose_config("export", "model.cfg=yolov4-tiny", values=values), 64)


def _coco(path: Path, images: list[tuple[str, int, int]], boxes: dict[str, list[list[float]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    entries, annotations = [], []
    for i, (name, w, h) in enumerate(images):
        cv2.imwrite(str(path.parent / name), np.full((h, w, 3), 90, np.uint8))
        entries.append({"id": i, "file_name": name, "width": w, "height": h})
        annotations += [{"id": len(annotations), "image_id": i, "category_id": 4, "bbox": b} for b in boxes.get(name, [])]
    path.write_text(json.dumps({"images": entries, "annotations": annotations, "categories": [{"id": 4, "name": "car"}]}))
    return path


class _Oracle:
    """A detector that returns given boxes (x1, y1, x2, y2, score, class in image pixels) per image size."""

    batch = 1

    def __init__(self, by_shape: dict[tuple[int, int], np.ndarray]) -> None:
        self.by_shape = by_shape

    def detect_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self.by_shape.get(img.shape[:2], np.zeros((0, 6), np.float32)) for img in images]


def test_coco_dataset_folder_is_evaluated_with_its_json_labels(tmp_path: Path) -> None:
    _coco(tmp_path / "train" / "_annotations.coco.json", [("t.jpg", 80, 60)], {"t.jpg": [[10, 10, 20, 20]]})
    _coco(tmp_path / "valid" / "_annotations.coco.json", [("v.jpg", 100, 50)], {"v.jpg": [[30, 5, 40, 20]]})
    names, calib, valid, read_labels = _data_sources(str(tmp_path), "unused")
    assert names == ["car"] and [p.name for p in calib] == ["t.jpg"] and [p.name for p in valid] == ["v.jpg"]
    hit = np.array([[30, 5, 70, 25, 0.9, 0]], np.float32)  # the json's box [30, 5, 40, 20] as x1 y1 x2 y2
    metrics = evaluate_detector(_Oracle({(50, 100): hit}), valid, 1, read_labels=read_labels)
    assert metrics["mAP50"] == 1.0 and metrics["images"] == 1.0
    # without the reader there is no label file to find, so the same detection is a false positive
    assert evaluate_detector(_Oracle({(50, 100): hit}), valid, 1)["mAP50"] == 0.0


def test_plain_image_folder_is_calibration_only(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    names, calib, valid, read_labels = _data_sources(str(tmp_path), "unused")
    assert names is None and [p.name for p in calib] == ["a.png"] and valid == [] and read_labels is None
    assert _data_sources(None, "unused") == (None, [], [], None)


def test_builtin_and_data_yaml(tmp_path: Path) -> None:
    names, calib, valid, _ = _data_sources("builtin", str(tmp_path / "b"), {"n_train": 3, "n_val": 2, "img_size": 64})
    assert names == ["disc", "plate"] and len(calib) == 3 and len(valid) == 2
    (tmp_path / "data.yaml").write_text(f"train: {calib[0].parent}\nval: {valid[0].parent}\nnames: [disc, plate]\n")
    names, calib, valid, read_labels = _data_sources(str(tmp_path / "data.yaml"), "unused")
    assert names == ["disc", "plate"] and len(valid) == 2
    assert read_labels(valid[0])[1] == []  # the label file beside the image
