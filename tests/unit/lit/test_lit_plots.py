"""RunPlots: boxes back in original pixels, its options and state, and a fit that plots cannot break."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from yolo_slim.data import YoloDataModule
from yolo_slim.data.dataset import YoloDataset, collate_detection
from yolo_slim.errors import ConfigError
from yolo_slim.lit.module import YoloLitModule
from yolo_slim.lit.plots import RunPlots, boxes_in_original
from yolo_slim.metrics.plots import plot_results
from yolo_slim.ops.boxes import targets_to_pixels

ROOT = Path(__file__).resolve().parents[3]
# the EMA copy stays in eval mode on purpose (train_task filters the same warning)
pytestmark = pytest.mark.filterwarnings(r"ignore:Found \d+ module\(s\) in eval mode")


def test_boxes_in_original_undo_the_datasets_letterbox(tmp_path: Path) -> None:
    # non-square images, one wider and one taller than high, with labels in darknet's layout
    sizes = [(50, 96), (96, 40)]
    labels = [np.array([[1, 0.25, 0.5, 0.3, 0.6], [0, 0.8, 0.3, 0.2, 0.2]]), np.array([[0, 0.5, 0.75, 0.5, 0.25]])]
    paths = []
    for i, ((h, w), lab) in enumerate(zip(sizes, labels)):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
        np.savetxt(tmp_path / f"{i}.txt", lab, fmt="%g")
        paths.append(path)
    dataset = YoloDataset(paths, num_classes=2, img_size=64)
    batch = collate_detection([dataset[0], dataset[1]])
    targets = targets_to_pixels(batch["targets"], 2, (64, 64))
    for i, ((h, w), lab) in enumerate(zip(sizes, labels)):
        out = boxes_in_original(batch, targets, i)
        expected = np.column_stack((
            (lab[:, 1] - lab[:, 3] / 2) * w, (lab[:, 2] - lab[:, 4] / 2) * h,
            (lab[:, 1] + lab[:, 3] / 2) * w, (lab[:, 2] + lab[:, 4] / 2) * h,
        ))
        np.testing.assert_allclose(out[:, :4], expected, atol=0.6)  # within the letterbox's rounding
        assert np.isnan(out[:, 4]).all() and out[:, 5].tolist() == lab[:, 0].tolist()
    # predictions keep their score and class; boxes are clipped to the original image
    preds = [torch.tensor([[-5.0, 0.0, 70.0, 30.0, 0.8, 1.0]]), torch.zeros(0, 6)]
    out = boxes_in_original(batch, preds, 0)
    assert out[0, 0] == 0 and out[0, 2] == 96 and out[0, 4] == pytest.approx(0.8) and out[0, 5] == 1
    assert boxes_in_original(batch, preds, 1).shape == (0, 6)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="run_plots.max_images must be a positive integer, got 0"):
        RunPlots(max_images=0)
    with pytest.raises(ConfigError, match=r"run_plots.cell must be an integer >= 32 \(pixels\), got 8"):
        RunPlots(cell=8)
    with pytest.raises(ConfigError, match=r"run_plots.iou_threshold must be in \(0, 1\], got 1.5"):
        RunPlots(iou_threshold=1.5)
    with pytest.raises(ConfigError, match=r"run_plots.results_every_s must be a number of seconds >= 0, got -1"):
        RunPlots(results_every_s=-1)


def test_history_is_callback_state() -> None:
    plots = RunPlots()
    plots.history = [{"epoch": 1.0, "val/mAP50": 0.25}, {"epoch": 2.0, "val/mAP50": 0.5}]
    state = plots.state_dict()
    again = RunPlots()
    again.load_state_dict(state)
    assert again.history == plots.history and again.history is not plots.history


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def _fit(out: Path, data: Path, *callbacks: pl.Callback) -> pl.Trainer:
    """Two one-batch epochs of the demo model at 64 px, no checkpoints: the final EMA weights are plotted."""
    datamodule = YoloDataModule(data="builtin", img_size=64, batch_size=4, num_workers=0, augment=None,
                                builtin={"n_train": 4, "n_val": 4, "img_size": 64}, cache_dir=data)
    module = YoloLitModule(cfg=str(ROOT / "conf/model/cfg/yolov3-demo.cfg"), img_size=64, nominal_batch_size=4)
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=1, limit_val_batches=1, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, default_root_dir=out, callbacks=list(callbacks))
    trainer.fit(module, datamodule=datamodule)
    return trainer


def _boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_a_failing_plot_logs_one_warning_and_fit_goes_on(tmp_path: Path, tiny_data: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr("yolo_slim.lit.plots.plot_results", _boom)
    monkeypatch.setattr("yolo_slim.lit.plots.plot_confusion_matrix", _boom)
    plots = RunPlots(tmp_path / "run", max_images=2)
    with caplog.at_level(logging.WARNING, logger="yolo_slim.lit.plots"):
        trainer = _fit(tmp_path / "root", tiny_data, plots)
    assert trainer.state.finished and trainer.current_epoch == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # results.png failed in both epochs but warns once; the confusion plot once
    assert len(warnings) == 2, warnings
    assert "results.png not written (RuntimeError: boom)" in warnings[0]
    assert "confusion_matrix.png not written (RuntimeError: boom)" in warnings[1]
    assert len(plots.history) == 2 and "val/mAP50" in plots.history[1]
    # the curves come from the model and data the last validation scored (one batch is the whole set)
    logged = trainer.callback_metrics
    (at,) = np.nonzero(np.isclose(plots.curves.score_grid, 0.1))[0]
    assert plots.curves.map50 == pytest.approx(float(logged["val/mAP50"]), abs=1e-6) and plots.curves.map50 > 0
    assert plots.curves.mean_f1()[at] == pytest.approx(float(logged["val/f1"]), abs=1e-6)
    n_objects = sum(len(labels) for labels in trainer.datamodule.val_set.labels)
    assert plots.confusion.counts[:2].sum() == n_objects > 0  # each object once, in its class's row
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == ["F1_curve.png", "PR_curve.png", "confusion_matrix.json", "val_batch0_labels.jpg", "val_batch0_pred.jpg"]
    assert not (tmp_path / "root" / "results.png").exists()


def test_a_failing_evaluation_logs_one_warning_and_fit_goes_on(tmp_path: Path, tiny_data: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr("yolo_slim.lit.plots.predict_batches", _boom)
    plots = RunPlots()  # default folder: the trainer's root dir
    with caplog.at_level(logging.WARNING, logger="yolo_slim.lit.plots"):
        trainer = _fit(tmp_path / "root", tiny_data, plots)
    assert trainer.state.finished
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "evaluating the best model failed (RuntimeError: boom)" in warnings[0]
    assert sorted(p.name for p in (tmp_path / "root").glob("*.*")) == ["results.png"]


@pytest.mark.parametrize(("every", "draws"), [(0.0, 3), (3600.0, 2)])
def test_results_png_is_redrawn_at_most_every_results_every_s(tmp_path: Path, tiny_data: Path, monkeypatch, every: float, draws: int) -> None:
    """Two epochs: every epoch and the end (0 s), or the first epoch and the end (an hour);
    the last drawing always holds every epoch."""
    drawn: list[int] = []
    def counting(history, path):
        drawn.append(len(history))
        return plot_results(history, path)

    monkeypatch.setattr("yolo_slim.lit.plots.plot_results", counting)
    plots = RunPlots(tmp_path / "run", max_images=2, results_every_s=every)
    _fit(tmp_path / "root", tiny_data, plots)
    assert len(drawn) == draws and drawn[0] == 1 and drawn[-1] == 2
    assert (tmp_path / "run" / "results.png").is_file()
