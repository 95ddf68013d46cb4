"""Tests of anchor fitting (yolo_slim.data.anchors) and writing (yolo_slim.darknet.anchors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from yolo_slim.darknet.anchors import anchor_count, used_anchors, with_anchors
from yolo_slim.darknet.cfg import load_cfg, parse_cfg_text, write_cfg_text
from yolo_slim.data.anchors import anchor_stats, fit_anchors, fit_cfg_anchors, kmeans_anchors, letterboxed_box_sizes, wh_iou
from yolo_slim.data.formats import DataSpec
from yolo_slim.data.sources import resolve_dataset
from yolo_slim.errors import CfgError, ConfigError, DataError

from datafiles import write_coco, write_image, write_label

CLUSTERS = np.array([[8, 10], [20, 12], [14, 30], [40, 40], [90, 50], [60, 120]], np.float64)


def _planted(rng: np.random.Generator, per_cluster: int = 150, spread: float = 0.04) -> np.ndarray:
    """Boxes scattered by +-4% (log-normal) around each of CLUSTERS."""
    return np.concatenate([c * np.exp(rng.normal(0, spread, (per_cluster, 2))) for c in CLUSTERS])


def test_planted_clusters_are_found() -> None:
    wh = _planted(np.random.default_rng(0))
    anchors = kmeans_anchors(wh, len(CLUSTERS), seed=1)
    expected = CLUSTERS[np.argsort(CLUSTERS.prod(axis=1))]  # sorted by area
    np.testing.assert_allclose(anchors, expected, rtol=0.03)
    assert np.all(np.diff(anchors.prod(axis=1)) > 0)
    np.testing.assert_array_equal(anchors, kmeans_anchors(wh, len(CLUSTERS), seed=1))  # same seed, same anchors


def test_stats_by_hand() -> None:
    wh = np.array([[10, 10], [20, 40], [100, 10], [200, 5]], np.float64)
    anchors = np.array([[10, 10], [30, 30]], np.float64)
    # box (20, 40): IoU with (30, 30) = 20*30 / (800 + 900 - 600) = 6/11; with (10, 10) = 100/800
    np.testing.assert_allclose(wh_iou(wh[1:2], anchors), [[100 / 800, 6 / 11]])
    stats = anchor_stats(wh, anchors, anchor_t=4.0)
    # within ratio 4 (worse side ratio > 1/4): (10,10) both anchors; (20,40) only (30,30) (its 40/10 is exactly 4);
    # (100,10) only (30,30) (worse side 30/100); (200,5) none (200/30 = 6.7)
    assert stats.bpr == pytest.approx(3 / 4)
    assert stats.anchors_per_box == pytest.approx((2 + 1 + 1 + 0) / 4)
    assert stats.mean_iou == pytest.approx((1 + 6 / 11 + 300 / 1600 + 150 / 1750) / 4)
    assert stats.boxes == 4
    with pytest.raises(ConfigError, match="anchor_t must be > 1, got 1"):
        anchor_stats(wh, anchors, anchor_t=1.0)


def test_degenerate_inputs() -> None:
    with pytest.raises(DataError, match=r"3 boxes for 4 anchors: need at least as many boxes as anchors"):
        kmeans_anchors(np.ones((3, 2)), 4)
    same = np.tile([[12.0, 20.0]], (50, 1))
    with pytest.raises(DataError, match=r"only 1 distinct box size\(s\) for 2 anchors"):
        kmeans_anchors(same, 2)
    np.testing.assert_allclose(kmeans_anchors(same, 1), [[12, 20]])
    with pytest.raises(ConfigError, match="k must be a positive integer, got 0"):
        kmeans_anchors(same, 0)


def _square_dataset(root: Path, boxes_per_image: list[list[str]], size: tuple[int, int] = (100, 200)) -> DataSpec:
    for i, lines in enumerate(boxes_per_image):
        write_image(root / "images" / f"{i}.png", height=size[0], width=size[1], seed=i)
        write_label(root / "images" / f"{i}.txt", lines)
    (root / "x.names").write_text("a\nb\n")
    return DataSpec(classes=2, names=("a", "b"), train=(root / "images",), valid=(root / "images",), source=root)


def test_box_sizes_are_letterboxed(tmp_path: Path) -> None:
    spec = _square_dataset(tmp_path, [["0 0.5 0.5 0.5 0.5"], ["1 0.25 0.25 0.1 0.2", "0 0.5 0.5 1 1"]])
    wh, report = letterboxed_box_sizes(spec, 100)  # 200 x 100 images: scale 0.5
    np.testing.assert_allclose(wh, [[50, 25], [10, 10], [100, 50]])
    assert report.images_kept == 2 and report.boxes == 3 and report.total_issues == 0
    # a COCO json states its sizes: a 300 x 150 image, a [30, 15, 60, 30] box -> 20 x 10 at 100 px
    write_image(tmp_path / "coco" / "c.png", height=150, width=300)
    json_path = write_coco(tmp_path / "coco" / "ann.json", [{"id": 1, "file_name": "c.png", "width": 300, "height": 150}],
                           [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [30, 15, 60, 30]}],
                           [{"id": 5, "name": "x"}])
    wh, _ = letterboxed_box_sizes(resolve_dataset(json_path, need_valid=False), 100)
    np.testing.assert_allclose(wh, [[20, 10]])


def test_fit_reports_and_leaves_tiny_boxes_out(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lines = [[f"0 0.5 0.5 {w / 400:.5f} {h / 200:.5f}" for w, h in _planted(rng, per_cluster=4)[i::10]]
             for i in range(10)]
    lines[0].append("0 0.5 0.5 0.002 0.01")  # 0.8 x 2 px in a 400 x 200 image, at 400 px
    spec = _square_dataset(tmp_path, lines, size=(200, 400))
    fit = fit_anchors(spec, 400, 6, current=[[10, 14], [23, 27]], seed=0)
    assert fit.boxes == 25 and fit.small_boxes == 1 and fit.images == 10
    assert len(fit.anchors) == 6 and all(float(w).is_integer() and float(h).is_integer() for w, h in fit.anchors)
    assert fit.fitted.mean_iou > fit.current.mean_iou
    text = fit.format()
    assert "25 boxes in 10 images at 400 px" in text and "1 under 2 px left out of the fit" in text
    assert fit.cfg_text() in text and "cfg      BPR" in text
    assert fit.to_dict()["fitted"]["boxes"] == 25


def test_with_anchors_writes_every_head(tmp_path: Path) -> None:
    cfg = load_cfg("yolov4")
    new = [(float(i * 7 + 3), float(i * 5 + 4)) for i in range(9)][::-1]  # given largest first
    out = with_anchors(cfg, new)
    for i in out.yolo_ids():
        assert out.layers[i].anchors == tuple(sorted(new, key=lambda p: p[0] * p[1]))
        assert out.layers[i].mask == cfg.layers[i].mask
    assert used_anchors(out)[:3] == ((3.0, 4.0), (10.0, 9.0), (17.0, 14.0))  # the finest head (stride 8) gets the smallest
    again = parse_cfg_text(write_cfg_text(out))
    assert again == out  # through the cfg writer and back
    tiny = load_cfg("yolov4-tiny")
    assert anchor_count(tiny) == 6 and len(used_anchors(tiny)) == 5  # index 0 is in no mask
    with pytest.raises(CfgError, match=r"the heads index 9 anchors \(num=9\); got 6"):
        with_anchors(cfg, new[:6])
    with pytest.raises(CfgError, match="anchors must have positive width and height"):
        with_anchors(tiny, [(0.0, 3.0)] + new[:5])


def test_masks_not_ordered_by_stride_are_refused() -> None:
    text = write_cfg_text(load_cfg("yolov3-tiny"))
    swapped = text.replace("mask=3,4,5", "mask=A").replace("mask=0,1,2", "mask=3,4,5").replace("mask=A", "mask=0,1,2")
    cfg = parse_cfg_text(swapped, "swapped.cfg")
    with pytest.raises(CfgError, match=r"swapped.cfg:\d+: \[yolo\] layer 16 \(stride 32\) has mask 0,1,2 below that of "
                                       r"layer 23 \(stride 16, mask 3,4,5\)"):
        with_anchors(cfg, [(float(i + 1), float(i + 2)) for i in range(6)])


def test_fit_cfg_anchors_for_the_training_task(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    lines = [[f"1 0.5 0.5 {w / 400:.5f} {h / 200:.5f}" for w, h in _planted(rng, per_cluster=3)[i::6]] for i in range(6)]
    spec = _square_dataset(tmp_path, lines, size=(200, 400))
    cfg, fit = fit_cfg_anchors("yolov3-tiny", spec, 416, seed=2)
    assert len(fit.anchors) == 6 and cfg.layers[cfg.yolo_ids()[0]].anchors == fit.anchors
    assert fit.current_anchors == used_anchors(load_cfg("yolov3-tiny"))
    with pytest.raises(CfgError, match=r"its masks index 6 anchors \(num=6\); cannot write 9 into it"):
        fit_cfg_anchors("yolov3-tiny", spec, 416, k=9)


def test_no_readable_image(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "0.png").write_bytes(b"not a png")
    spec = DataSpec(classes=1, names=("a",), train=(tmp_path / "images" / "0.png",), valid=(), source=tmp_path)
    with pytest.raises(DataError, match=r"none of the 1 training images could be read"):
        fit_anchors(spec, 64, 1)


