"""The drawing functions: valid, non-blank files, boxes where they belong, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolo_slim.errors import DataError
from yolo_slim.metrics.confusion import ConfusionMatrix
from yolo_slim.metrics.detection import DetectionMetrics
from yolo_slim.metrics.plots import (
    class_colour,
    draw_boxes,
    image_grid,
    plot_confusion_matrix,
    plot_f1_curves,
    plot_pr_curves,
    plot_results,
    write_image,
)


def _read(path: Path) -> np.ndarray:
    """The decoded image; a real picture has many distinct colours, a blank one few."""
    assert path.is_file() and not list(path.parent.glob(f".{path.name}.*")), "written atomically, no temporary left"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} does not decode"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20 and image.std() > 10, f"{path} is nearly blank"
    return image


def _metric() -> DetectionMetrics:
    rng = np.random.default_rng(0)
    preds, targets = [], []
    for _ in range(6):
        xy = rng.uniform(0, 100, (4, 2))
        gt = np.column_stack((rng.integers(0, 2, 4), xy, xy + 30))
        det = np.column_stack((gt[:, 1:] + rng.normal(0, 3, (4, 4)), rng.uniform(0.2, 1, 4), gt[:, 0]))
        preds.append(torch.tensor(det, dtype=torch.float32))
        targets.append(torch.tensor(gt, dtype=torch.float32))
    metric = DetectionMetrics(num_classes=3)
    metric.update(preds, targets)
    return metric


def test_results_plot_with_gaps(tmp_path: Path) -> None:
    history = [
        {"epoch": 1.0, "train/loss_epoch": 3.0, "train/box_epoch": 0.2, "val/mAP50": 0.1, "val/precision": 0.2},
        {"epoch": 2.0, "train/loss_epoch": 2.5, "train/box_epoch": 0.15},  # an epoch without validation
        {"epoch": 3.0, "train/loss_epoch": 2.0, "train/box_epoch": 0.1, "val/mAP50": 0.3, "val/precision": 0.4},
    ]
    image = _read(plot_results(history, tmp_path / "results.png"))
    assert image.shape[1] > 2 * image.shape[0]  # 2 rows of 6 panels
    _read(plot_results(history[:1], tmp_path / "one.png"))  # a single epoch draws too


def test_pr_f1_and_confusion_plots(tmp_path: Path) -> None:
    curves = _metric().curves()
    names = ["disc", "plate", "unused"]
    _read(plot_pr_curves({"": (curves.recall_grid, curves.pr_precision)}, names, tmp_path / "PR_curve.png"))
    two = {"baseline": (curves.recall_grid, curves.pr_precision), "slim": (curves.recall_grid.tolist(), (curves.pr_precision * 0.8).tolist())}
    _read(plot_pr_curves(two, names, tmp_path / "pr_two.png"))
    _read(plot_f1_curves(curves, names, tmp_path / "F1_curve.png"))
    matrix = ConfusionMatrix(3)
    matrix.counts[:] = [[5, 1, 0, 2], [0, 3, 0, 1], [0, 0, 0, 0], [4, 2, 1, 0]]
    _read(plot_confusion_matrix(matrix, names, tmp_path / "confusion_matrix.png"))
    many = ConfusionMatrix(30)  # 31 rows: no cell labels, still drawn
    many.counts[np.arange(30), np.arange(30)] = 3
    _read(plot_confusion_matrix(many, [f"c{k}" for k in range(30)], tmp_path / "many.png"))


def test_plots_of_a_set_without_ground_truth(tmp_path: Path) -> None:
    metric = DetectionMetrics(num_classes=2)
    metric.update([torch.tensor([[0.0, 0.0, 5.0, 5.0, 0.9, 1]])], [torch.zeros(0, 5)])
    curves = metric.curves()
    for path in (plot_pr_curves({"": (curves.recall_grid, curves.pr_precision)}, ["a", "b"], tmp_path / "pr.png"),
                 plot_f1_curves(curves, ["a", "b"], tmp_path / "f1.png")):
        assert cv2.imread(str(path)) is not None


def test_boxes_are_drawn_in_original_pixels_and_class_colours(tmp_path: Path) -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    boxes = np.array([[20, 50, 80, 90, np.nan, 1], [120, 10, 180, 60, 0.87, 0]])
    drawn = draw_boxes(image, boxes, ["disc", "plate"])
    r, g, b = class_colour(1)
    np.testing.assert_allclose(drawn[70, 20], [b * 255, g * 255, r * 255], atol=2)  # left edge of box 0
    assert drawn[70, 50].sum() == 0  # inside stays untouched
    assert class_colour(0) != class_colour(1) and class_colour(3) == class_colour(23)

    grid = image_grid([image, image[:, :100], image], [boxes, np.zeros((0, 6)), boxes[:1]], ["disc", "plate"], cell=64)
    assert grid.shape == (128, 128, 3)  # 3 images: 2 x 2 cells of 64 px
    # box 0 of image 0, scaled by 64 / 200: its left edge at x = 6 in the first cell, and in the third
    np.testing.assert_allclose(grid[int(70 * 0.32), 6], [b * 255, g * 255, r * 255], atol=2)
    np.testing.assert_allclose(grid[64 + int(70 * 0.32), 6], [b * 255, g * 255, r * 255], atol=2)
    assert grid[int(70 * 0.32), 64 + 6].sum() == 0  # the second image has no boxes
    titled = image_grid([image], [boxes], ["disc", "plate"], cell=64, titles=["a.jpg"])
    assert titled.shape == (64, 64, 3) and (titled != image_grid([image], [boxes], ["disc", "plate"], cell=64)).any()

    path = write_image(tmp_path / "grid.jpg", cv2.resize(grid, (256, 256)) + np.uint8(60))
    assert cv2.imread(str(path)).shape == (256, 256, 3)


def test_bad_drawing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="need one box array per image, got 1 images and 0 box arrays"):
        image_grid([np.zeros((8, 8, 3), np.uint8)], [], ["a"])
    with pytest.raises(DataError, match=r"grid.xyz: images are written as .jpg or .png, not .xyz"):
        write_image(tmp_path / "grid.xyz", np.zeros((8, 8, 3), np.uint8))
