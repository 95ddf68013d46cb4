"""Detection metrics against pycocotools and hand-computed cases."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from yolo_slim.errors import ConfigError, DataError
from yolo_slim.metrics.detection import DetectionMetrics, ap_per_class, match_predictions

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def _random_boxes(rng: np.random.Generator, n: int, size: float = 640.0) -> np.ndarray:
    xy = rng.uniform(0, size * 0.8, (n, 2))
    wh = rng.uniform(10, size * 0.3, (n, 2))
    return np.concatenate((xy, xy + wh), 1)


def _random_dataset(seed: int, n_images: int = 20, n_classes: int = 3) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Ground truths and detections: jittered GTs (sometimes the wrong class) plus clutter.

    Image 0 has no ground truth, image 1 no detections, image 2 more than 100
    candidates (capped at 100, as pycocotools' maxDets would).
    """
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for i in range(n_images):
        m = 0 if i == 0 else int(rng.integers(1, 9))
        gt_boxes = _random_boxes(rng, m)
        gt_cls = rng.integers(0, n_classes, m)
        targets.append(torch.tensor(np.column_stack((gt_cls, gt_boxes)), dtype=torch.float64).reshape(-1, 5))
        if i == 1:  # an image with ground truth and no detections
            preds.append(torch.zeros(0, 6))
            continue
        copies = np.repeat(np.arange(m), rng.integers(0, 4, m))
        jitter = rng.normal(0, 1, (copies.size, 4)) * (gt_boxes[copies, 2:] - gt_boxes[copies, :2]).repeat(2, 1) * 0.12
        n_clutter = 150 if i == 2 else int(rng.integers(0, 40))
        det_boxes = np.concatenate((gt_boxes[copies] + jitter, _random_boxes(rng, n_clutter)))
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        flip = rng.random(copies.size) < 0.15
        det_cls = np.concatenate(
            (np.where(flip, rng.integers(0, n_classes, copies.size), gt_cls[copies]),
             rng.integers(0, n_classes, det_boxes.shape[0] - copies.size))
        )
        # Near-GT detections tend to score higher than clutter, as from a real detector.
        scores = np.concatenate((0.3 + 0.7 * rng.random(copies.size), 0.8 * rng.random(n_clutter)))
        rows = np.column_stack((det_boxes, scores, det_cls))
        rows = rows[np.argsort(-scores, kind="stable")][:100]  # pycocotools keeps at most 100 per image
        preds.append(torch.tensor(rows, dtype=torch.float32))
    return preds, targets


def _coco_map(preds: list[torch.Tensor], targets: list[torch.Tensor], n_classes: int) -> tuple[float, float]:
    images, anns, dets = [], [], []
    for img_id, (pred, target) in enumerate(zip(preds, targets), start=1):
        images.append({"id": img_id, "width": 640, "height": 640})
        for c, x1, y1, x2, y2 in target.tolist():
            anns.append(
                {"id": len(anns) + 1, "image_id": img_id, "category_id": int(c) + 1,
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            )
        for x1, y1, x2, y2, s, c in pred.double().tolist():
            dets.append({"image_id": img_id, "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": k + 1} for k in range(n_classes)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1]), float(ev.stats[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_map_matches_pycocotools(seed: int) -> None:
    preds, targets = _random_dataset(seed)
    coco50, coco50_95 = _coco_map(preds, targets, 3)
    metric = DetectionMetrics(num_classes=3)
    metric.update(preds[:7], targets[:7])
    metric.update(preds[7:], targets[7:])
    out = metric.compute()
    assert 0.05 < coco50 < 0.95  # a non-trivial case
    assert out["mAP50"].item() == pytest.approx(coco50, abs=1e-3)
    assert out["mAP50_95"].item() == pytest.approx(coco50_95, abs=1e-3)


def test_perfect_predictions_give_one() -> None:
    _, targets = _random_dataset(3, n_images=6)
    preds = [torch.cat((t[:, 1:], torch.full((len(t), 1), 0.9), t[:, :1]), 1).float() for t in targets]
    metric = DetectionMetrics(num_classes=3)
    metric.update(preds, targets)
    out = metric.compute()
    for key in ("precision", "recall", "f1", "mAP50", "mAP50_95"):
        assert out[key].item() == pytest.approx(1.0), key
    assert torch.allclose(out["ap50_per_class"], torch.ones(3))


def test_match_predictions_hand_case() -> None:
    target = torch.tensor([[0, 0.0, 0.0, 10.0, 10.0], [1, 20.0, 20.0, 30.0, 30.0]])
    pred = torch.tensor(
        [
            [0.0, 0.0, 10.0, 7.0, 0.6, 0],  # IoU 0.7 with GT 0
            [0.0, 0.0, 10.0, 10.0, 0.9, 0],  # exact, higher score: takes GT 0 first
            [20.0, 20.0, 30.0, 30.0, 0.8, 0],  # right place, wrong class
        ]
    )
    tp = match_predictions(pred, target)
    assert tp.shape == (3, 10) and tp.dtype == torch.bool
    assert tp[1].all() and not tp[2].any()
    assert not tp[0].any()  # GT 0 already taken at every threshold
    tp = match_predictions(pred[[0]], target)
    assert tp[0].tolist() == [True] * 5 + [False] * 5  # 0.5 .. 0.70 pass, 0.75 .. 0.95 fail
    assert match_predictions(torch.zeros(0, 6), target).shape == (0, 10)
    assert not match_predictions(pred, torch.zeros(0, 5)).any()
    with pytest.raises(DataError, match=r"Tensor\[M, 5\]"):
        match_predictions(pred, torch.zeros(2, 4))


def test_ap_and_precision_recall_at_score_threshold() -> None:
    # One class, 3 ground truths; detections by score: TP, FP, TP, TP.
    tp = np.array([[True], [False], [True], [True]])
    conf = np.array([0.9, 0.8, 0.3, 0.05])
    stats = ap_per_class(tp, conf, np.zeros(4), np.zeros(3), num_classes=2, score_threshold=0.1)
    # Envelope precision: 1.0 up to recall 1/3 (34 grid points), 0.75 above (67 points).
    assert stats["ap"][0, 0] == pytest.approx((34 * 1.0 + 67 * 0.75) / 101)
    # Curves interpolated at conf 0.1, 80 % of the way from conf 0.3 to conf 0.05.
    assert stats["recall"][0] == pytest.approx(2 / 3 + 0.8 * (1 / 3))
    assert stats["precision"][0] == pytest.approx(2 / 3 + 0.8 * (0.75 - 2 / 3))
    p, r = stats["precision"][0], stats["recall"][0]
    assert stats["f1"][0] == pytest.approx(2 * p * r / (p + r))
    # Class 1 has no ground truth: nan per class, excluded from the means.
    assert np.isnan(stats["ap50"][1]) and np.isnan(stats["precision"][1])
    assert stats["map50"] == pytest.approx(stats["ap50"][0]) and stats["mp"] == pytest.approx(p)
    assert stats["pr_precision"].shape == (2, 101) and stats["recall_grid"][[0, -1]].tolist() == [0.0, 1.0]

    # At a score threshold a detection sits on, the curves are read there exactly.
    at_03 = ap_per_class(tp, conf, np.zeros(4), np.zeros(3), num_classes=1, score_threshold=0.3)
    assert at_03["recall"][0] == pytest.approx(2 / 3) and at_03["precision"][0] == pytest.approx(2 / 3)
    # Above every score: nothing is kept, so P = R = 0 (not the top detection's precision).
    above = ap_per_class(tp, conf, np.zeros(4), np.zeros(3), num_classes=1, score_threshold=0.95)
    assert above["precision"][0] == 0.0 and above["recall"][0] == 0.0 and above["f1"][0] == 0.0


def test_empty_inputs_give_zero_metrics() -> None:
    metric = DetectionMetrics(num_classes=2)
    metric.update([], [])
    metric.update([torch.zeros(0, 6)], [torch.zeros(0, 5)])
    out = metric.compute()
    assert all(out[k].item() == 0.0 for k in ("precision", "recall", "f1", "mAP50", "mAP50_95"))
    assert torch.isnan(out["ap50_per_class"]).all()

    metric.reset()
    metric.update([torch.zeros(0, 6)], [torch.tensor([[1, 0.0, 0.0, 5.0, 5.0]])])
    out = metric.compute()
    assert out["mAP50"].item() == 0.0 and out["recall"].item() == 0.0
    assert torch.isnan(out["ap50_per_class"][0]) and out["ap50_per_class"][1].item() == 0.0

    metric.reset()
    metric.update([torch.tensor([[0.0, 0.0, 5.0, 5.0, 0.9, 1]])], [torch.zeros(0, 5)])
    assert metric.compute()["mAP50"].item() == 0.0


def test_pr_curves_and_state_merging() -> None:
    preds, targets = _random_dataset(5, n_images=8)
    whole = DetectionMetrics(num_classes=3)
    whole.update(preds, targets)
    recall, precision = whole.pr_curves()
    assert recall.shape == (101,) and precision.shape == (3, 101)
    finite = precision[~torch.isnan(precision[:, 0])]
    assert (finite[:, :-1] >= finite[:, 1:]).all()  # envelope is monotone
    assert torch.allclose(finite.mean(1), whole.compute()["ap50_per_class"][~torch.isnan(precision[:, 0])])

    # Two "ranks" merged the way DDP's cat reduction merges them give the same result.
    a, b = DetectionMetrics(num_classes=3), DetectionMetrics(num_classes=3)
    a.update(preds[:3], targets[:3])
    b.update(preds[3:], targets[3:])
    a.merge_state(b)
    merged, full = a.compute(), whole.compute()
    for key in ("precision", "recall", "mAP50", "mAP50_95"):
        assert merged[key].item() == pytest.approx(full[key].item()), key


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="first IoU threshold must be 0.5"):
        DetectionMetrics(num_classes=2, iou_thresholds=[0.75])
    with pytest.raises(ConfigError, match="num_classes"):
        DetectionMetrics(num_classes=0)
    metric = DetectionMetrics(num_classes=2)
    with pytest.raises(DataError, match="class ids outside 0..1"):
        metric.update([torch.zeros(0, 6)], [torch.tensor([[2, 0.0, 0.0, 5.0, 5.0]])])
    with pytest.raises(DataError, match="1 prediction tensors for 2 target tensors"):
        metric.update([torch.zeros(0, 6)], [torch.zeros(0, 5), torch.zeros(0, 5)])
