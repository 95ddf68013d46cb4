"""The detection confusion matrix: a hand-built case and its ties to the P/R matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo_slim.errors import ConfigError, DataError
from yolo_slim.metrics.confusion import ConfusionMatrix, confusion_matrix
from yolo_slim.metrics.detection import match_predictions

A, B, BG = 0, 1, 2


def _t(rows: list[list[float]], width: int) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, width)


def _hand_built() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Four images; each comment names the cell the box lands in (true, predicted)."""
    box1, box2, box3 = [0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 70, 70]
    preds = [
        _t([
            [*box1, 0.9, A],           # (A, A): true positive
            [*box2, 0.8, A],           # (B, A): a B object detected as A
            [80, 80, 90, 90, 0.7, B],  # (background, B): nothing there
            [*box1, 0.6, A],           # (background, A): duplicate of a matched object
            [*box3, 0.05, B],          # below the score threshold: ignored, so box3 is missed
        ], 6),
        _t([[0, 0, 10, 10, 0.5, A]], 6),   # (background, A): an image without objects
        _t([[5, 0, 15, 10, 0.4, B]], 6),   # IoU 1/3 with the B object: (background, B) and (B, background)
        _t([
            [*box1, 0.9, B],           # higher score, wrong class: the class-aware pass goes first,
            [*box1, 0.3, A],           # so A takes the object (A, A) and B is (background, B)
        ], 6),
    ]
    targets = [
        _t([[A, *box1], [B, *box2], [A, *box3]], 5),
        _t([], 5),
        _t([[B, 0, 0, 10, 10]], 5),
        _t([[A, *box1]], 5),
    ]
    return preds, targets


def test_hand_built_confusion_matrix() -> None:
    preds, targets = _hand_built()
    counts = confusion_matrix(preds, targets, num_classes=2, score_threshold=0.1, iou_threshold=0.5)
    expected = np.array([
        [2, 0, 1],  # true A: two found, box3 missed
        [1, 0, 1],  # true B: one detected as A, one missed
        [2, 3, 0],  # background: false A (duplicate, empty image), false B (x3)
    ])
    np.testing.assert_array_equal(counts, expected)

    matrix = ConfusionMatrix(2, 0.1, 0.5)
    for p, t in zip(preds, targets):  # image by image accumulates to the same counts
        matrix.update([p], [t])
    np.testing.assert_array_equal(matrix.counts, expected)
    np.testing.assert_allclose(matrix.normalised(), expected / expected.sum(1, keepdims=True))
    record = matrix.to_dict(["A", "B"])
    assert record["labels"] == ["A", "B", "background"] and record["counts"] == expected.tolist()
    assert record["rows"] == "true class" and record["score_threshold"] == 0.1

    # a lower score keeps the 0.05 detection: box3 is then a B detection of an A object
    low = confusion_matrix(preds, targets, 2, score_threshold=0.01)
    assert low[A, B] == 1 and low[A, BG] == 0


def test_diagonal_rows_and_columns_follow_the_metric_matching() -> None:
    rng = np.random.default_rng(7)
    preds, targets = [], []
    for _ in range(30):
        m = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (m, 2))
        gt = np.column_stack((rng.integers(0, 3, m), xy, xy + rng.uniform(10, 60, (m, 2))))
        jitter = np.repeat(gt, 2, 0)
        jitter[:, 1:] += rng.normal(0, 4, jitter[:, 1:].shape)
        jitter[:, 0] = np.where(rng.random(len(jitter)) < 0.25, rng.integers(0, 3, len(jitter)), jitter[:, 0])
        clutter = np.column_stack((rng.integers(0, 3, 3), rng.uniform(0, 200, (3, 2)), rng.uniform(200, 260, (3, 2))))
        cand = np.concatenate((jitter, clutter))
        det = np.column_stack((cand[:, 1:], rng.uniform(0, 1, len(cand)), cand[:, 0]))
        preds.append(torch.tensor(det, dtype=torch.float32).reshape(-1, 6))
        targets.append(torch.tensor(gt, dtype=torch.float32).reshape(-1, 5))
    thr = 0.3
    counts = confusion_matrix(preds, targets, 3, score_threshold=thr)
    kept = [p[p[:, 4] >= thr] for p in preds]
    tp = torch.cat([match_predictions(p, t, [0.5])[:, 0] for p, t in zip(kept, targets)])
    cls = torch.cat([p[:, 5] for p in kept]).long()
    n_gt = np.bincount(torch.cat([t[:, 0] for t in targets]).long().numpy(), minlength=3)
    np.testing.assert_array_equal(np.diag(counts)[:3], np.bincount(cls[tp].numpy(), minlength=3))
    np.testing.assert_array_equal(counts[:3].sum(1), n_gt)
    np.testing.assert_array_equal(counts[:, :3].sum(0), np.bincount(cls.numpy(), minlength=3))
    assert counts[3, 3] == 0 and counts[:3, :3].sum() > np.trace(counts[:3, :3])  # confusions exist


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="num_classes must be a positive int"):
        ConfusionMatrix(0)
    with pytest.raises(ConfigError, match=r"score_threshold must be in \[0, 1\]"):
        ConfusionMatrix(2, score_threshold=1.5)
    with pytest.raises(ConfigError, match=r"iou_threshold must be in \(0, 1\]"):
        ConfusionMatrix(2, iou_threshold=0.0)
    matrix = ConfusionMatrix(2)
    with pytest.raises(DataError, match="2 prediction tensors for 1 target tensors"):
        matrix.update([torch.zeros(0, 6)] * 2, [torch.zeros(0, 5)])
    with pytest.raises(DataError, match=r"target of image 0 has class ids outside 0..1: \[5\]"):
        matrix.update([torch.zeros(0, 6)], [_t([[5, 0, 0, 1, 1]], 5)])
    with pytest.raises(DataError, match=r"image 0 needs pred Tensor\[K, 6\]"):
        matrix.update([torch.zeros(2, 4)], [torch.zeros(0, 5)])
    with pytest.raises(ConfigError, match="1 names for 2 classes"):
        matrix.to_dict(["A"])
