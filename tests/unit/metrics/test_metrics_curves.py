"""The curves behind the plots: the same numbers as DetectionMetrics, and a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo_slim.metrics.detection import SCORE_GRID, DetectionCurves, DetectionMetrics, ap_per_class, match_predictions


def _detections(seed: int, n_images: int = 12, n_classes: int = 3, scores_on_grid: bool = False):
    """Jittered ground truths (some with the wrong class) plus clutter, as a detector's output.

    Class 2 never occurs in the ground truth. With ``scores_on_grid`` every score is a
    distinct point of ``SCORE_GRID``.
    """
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    grid_scores = iter(rng.permutation(np.arange(1, 1000))) if scores_on_grid else None
    for _ in range(n_images):
        m = int(rng.integers(1, 6))
        xy = rng.uniform(0, 300, (m, 2))
        gt = np.column_stack((rng.integers(0, n_classes - 1, m), xy, xy + rng.uniform(15, 80, (m, 2))))
        near = np.repeat(gt, rng.integers(0, 3, m), 0)
        near[:, 1:] += rng.normal(0, 5, near[:, 1:].shape)
        near[:, 0] = np.where(rng.random(len(near)) < 0.2, rng.integers(0, n_classes, len(near)), near[:, 0])
        k = int(rng.integers(0, 8))
        far_xy = rng.uniform(0, 300, (k, 2))
        far = np.column_stack((rng.integers(0, n_classes, k), far_xy, far_xy + rng.uniform(15, 80, (k, 2))))
        cand = np.concatenate((near, far))
        if grid_scores is not None:
            scores = np.array([SCORE_GRID[next(grid_scores)] for _ in range(len(cand))])
        else:
            scores = np.concatenate((0.3 + 0.7 * rng.random(len(near)), 0.7 * rng.random(k)))
        preds.append(torch.tensor(np.column_stack((cand[:, 1:], scores, cand[:, 0])), dtype=torch.float64).reshape(-1, 6))
        targets.append(torch.tensor(gt, dtype=torch.float64).reshape(-1, 5))
    return preds, targets


@pytest.mark.parametrize("score_threshold", [0.1, 0.25])
def test_curves_give_the_logged_p_r_f1_and_map(score_threshold: float) -> None:
    preds, targets = _detections(0)
    metric = DetectionMetrics(num_classes=3, score_threshold=score_threshold)
    metric.update(preds, targets)
    logged = metric.compute()
    curves = metric.curves()
    assert curves.present.tolist() == [True, True, False] and 0.05 < logged["mAP50"].item() < 0.95

    (j,) = np.nonzero(np.isclose(curves.score_grid, score_threshold))[0]
    present = curves.present
    assert curves.precision[present, j].mean() == pytest.approx(logged["precision"].item(), abs=1e-6)
    assert curves.recall[present, j].mean() == pytest.approx(logged["recall"].item(), abs=1e-6)
    assert curves.mean_f1()[j] == pytest.approx(logged["f1"].item(), abs=1e-6)
    assert curves.map50 == pytest.approx(logged["mAP50"].item(), abs=1e-6)
    assert curves.mean_pr_precision().mean() == pytest.approx(logged["mAP50"].item(), abs=1e-6)
    np.testing.assert_allclose(curves.ap50, logged["ap50_per_class"].numpy(), atol=1e-6, equal_nan=True)
    assert np.isnan(curves.f1[2]).all() and np.isnan(curves.best_f1(2)).all()

    best, at = curves.best_f1()
    assert best == pytest.approx(np.max(curves.mean_f1())) and best >= logged["f1"].item() - 1e-6
    assert curves.mean_f1()[np.searchsorted(curves.score_grid, at)] == best


def test_score_curves_equal_a_count_of_the_detections_kept() -> None:
    preds, targets = _detections(3, scores_on_grid=True)
    # the pure function on float64 scores (DetectionMetrics stores float32 ones)
    tp = torch.cat([match_predictions(p, t) for p, t in zip(preds, targets)]).numpy()
    scores = torch.cat([p[:, 4] for p in preds]).numpy()
    classes = torch.cat([p[:, 5] for p in preds]).long().numpy()
    true_classes = torch.cat([t[:, 0] for t in targets]).long().numpy()
    curves = DetectionCurves.from_stats(ap_per_class(tp, scores, classes, true_classes, 3), 0.1)
    n_gt = np.bincount(true_classes, minlength=3)
    checked = 0
    for c in (0, 1):
        for s in np.unique(scores[classes == c])[::3]:
            # the detections a user keeps at score s, matched on their own
            kept = [p[(p[:, 4] >= s) & (p[:, 5] == c)] for p in preds]
            hits = sum(int(match_predictions(k, t, [0.5])[:, 0].sum()) for k, t in zip(kept, targets))
            n = sum(len(k) for k in kept)
            j = int(np.nonzero(curves.score_grid == s)[0][0])
            assert curves.precision[c, j] == pytest.approx(hits / n), (c, s)
            assert curves.recall[c, j] == pytest.approx(hits / n_gt[c]), (c, s)
            checked += 1
    assert checked > 10
    above = curves.score_grid > scores.max()
    assert (curves.precision[:2, above] == 0).all() and (curves.recall[:2, above] == 0).all()


def test_perfect_detections_have_f1_one_up_to_their_score() -> None:
    _, targets = _detections(5)
    # 0.75: a score float32 stores exactly
    preds = [torch.cat((t[:, 1:], torch.full((len(t), 1), 0.75, dtype=t.dtype), t[:, :1]), 1) for t in targets]
    metric = DetectionMetrics(num_classes=3)
    metric.update(preds, targets)
    curves = metric.curves()
    f1 = curves.mean_f1()
    assert np.allclose(f1[curves.score_grid <= 0.75], 1.0) and np.allclose(f1[curves.score_grid > 0.75], 0.0)
    assert curves.best_f1() == (pytest.approx(1.0), 0.0)  # the lowest score reaching it
    assert curves.map50 == pytest.approx(1.0)


def test_no_ground_truth_gives_empty_curves() -> None:
    metric = DetectionMetrics(num_classes=2)
    metric.update([torch.tensor([[0.0, 0.0, 5.0, 5.0, 0.9, 1]])], [torch.zeros(0, 5)])
    curves = metric.curves()
    assert not curves.present.any() and curves.map50 == 0.0
    assert (curves.mean_f1() == 0).all() and curves.mean_pr_precision().shape == (101,)
