"""A tiny sparsity run through `train(cfg)` writes every plot of a run, beside its gamma histograms."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from tiny_runs import QUIET_CPU_TRAINER, TINY_DATA

from yolo_slim.darknet.cfg import parse_cfg
from yolo_slim.model import Darknet
from yolo_slim.train_task import train

ROOT = Path(__file__).resolve().parents[2]
PLOTS = ("results.png", "PR_curve.png", "F1_curve.png", "confusion_matrix.png", "val_batch0_pred.jpg", "val_batch0_labels.jpg")


def _picture(path: Path) -> np.ndarray:
    """A decodable image with real content (many colours, not one flat tone)."""
    data = path.read_bytes()
    if path.suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
        width, height = struct.unpack(">II", data[16:24])
    else:
        assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9", path  # JPEG start and end markers
        width = height = None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, path
    if width is not None:
        assert image.shape[:2] == (height, width), path
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50 and image.std() > 10, f"{path} is nearly blank"
    return image


def test_a_training_run_writes_every_plot(tmp_path: Path) -> None:
    start = Darknet(parse_cfg(ROOT / "conf/model/cfg/yolov3-demo.cfg")).save_darknet_weights(tmp_path / "start.weights")
    run = tmp_path / "run"
    overrides = [
        "experiment=demo_sparse",
        f"weights={start}",
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={run}",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.data_dir={tmp_path / 'data'}",
        *TINY_DATA,
        *QUIET_CPU_TRAINER,
        "trainer.max_epochs=2",
        "model.nominal_batch_size=4",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    _, artifacts = train(cfg)

    for name in PLOTS:
        assert artifacts[name] == run / name
        _picture(run / name)
    _picture(run / "gamma_hist.png")  # the sparsity callback's histograms stay
    pred, labels = _picture(run / "val_batch0_pred.jpg"), _picture(run / "val_batch0_labels.jpg")
    assert pred.shape == labels.shape == (2 * 320, 2 * 320, 3)  # 4 validation images of 64 px, 320 px cells

    checkpoint = torch.load(artifacts["last_ckpt"], map_location="cpu", weights_only=True)
    matrix = json.loads((run / "confusion_matrix.json").read_text())
    assert matrix["labels"] == ["disc", "plate", "background"]
    assert matrix["score_threshold"] == checkpoint["hyper_parameters"]["val"]["score_threshold"]
    counts = np.array(matrix["counts"])
    val_boxes = sum(len(np.loadtxt(p, ndmin=2)) for p in (tmp_path / "data").rglob("val/*.txt"))
    assert counts[:2].sum() == val_boxes > 0  # every ground truth lands in its true class's row

    # the per-epoch record travels in the checkpoint, so a resumed run's results.png continues it
    state = checkpoint["callbacks"]["RunPlots"]
    assert [row["epoch"] for row in state["history"]] == [1.0, 2.0]
    assert {"train/loss_epoch", "val/loss", "val/mAP50", "val/precision"} <= set(state["history"][-1])
