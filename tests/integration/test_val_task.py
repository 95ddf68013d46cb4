"""`val` on a tiny trained run: the run's own numbers, per class, from every model file form.

The oracle of the numbers is the training run itself: `val` on its `best.ckpt` must give
the P, R, mAP@0.5 and mAP@0.5:0.95 that the run logged for its best epoch (the same
letterbox, NMS and metric code), and `best.weights` with `model.cfg` (the same EMA
weights in darknet form) the same again. The class rows are checked against the label
files of the validation list, read here without yolo_slim.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from app_configs import compose_config
from tiny_runs import QUIET_CPU_TRAINER
from yolo_slim.errors import ConfigError, DataError
from yolo_slim.train_task import train
from yolo_slim.val_task import val

SIZE = 96
BUILTIN = ["builtin.n_train=8", "builtin.n_val=8", "builtin.img_size=96"]
DATA = ["loader.batch_size=4", "loader.num_workers=0", *BUILTIN]
EVAL = ["eval.conf_thres=0.0001"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("val")
    cfg = compose_config("train", f"img_size={SIZE}", *DATA, *EVAL, *QUIET_CPU_TRAINER, "trainer.max_epochs=1", "model.nominal_batch_size=4",
                         f"paths.output_dir={tmp / 'run'}", f"paths.data_dir={tmp / 'data'}")
    _, artifacts = train(cfg)
    return {**artifacts, "tmp": tmp}


def _val(trained: dict[str, Path], out: str, *overrides: str) -> tuple[dict[str, float], dict[str, Path]]:
    cfg = compose_config("val", "loader.batch_size=4", "loader.num_workers=0", "device=cpu", *EVAL, *overrides,
                         f"paths.output_dir={trained['tmp'] / out}", f"paths.data_dir={trained['tmp'] / 'data'}")
    return val(cfg)


def _best_row(metrics_csv: Path) -> dict[str, float]:
    rows = [r for r in csv.DictReader(metrics_csv.open()) if r.get("val/mAP50")]
    best = max(rows, key=lambda r: float(r["val/mAP50"]))  # ModelCheckpoint keeps the first of equal maxima
    best = next(r for r in rows if float(r["val/mAP50"]) == float(best["val/mAP50"]))
    return {k: float(v) for k, v in best.items() if k.startswith("val/") and v}


def test_val_of_best_ckpt_equals_the_runs_best_logged_validation(trained, capsys) -> None:
    metrics, artifacts = _val(trained, "ckpt", f"weights={trained['best_ckpt']}")  # no data=: the data set it was trained on
    logged = _best_row(trained["metrics_csv"])
    assert logged["val/mAP50"] > 0  # not a comparison between zeros
    for key in ("val/precision", "val/recall", "val/mAP50", "val/mAP50_95"):
        assert metrics[key] == pytest.approx(logged[key], abs=1e-6), key
    out = capsys.readouterr().out
    assert "class  images  labels" in out and "mAP@0.5:0.95" in out and "BFLOPs" in out
    assert str(artifacts["markdown"]) in out
    table = json.loads(artifacts["json"].read_text())
    assert table["img_size"] == SIZE and table["params"] == int(metrics["val/params"])
    assert table["classes"][0]["name"] == "all" and table["classes"][0]["mAP50"] == pytest.approx(metrics["val/mAP50"])
    assert "| all | 8 |" in artifacts["markdown"].read_text()


def test_val_of_darknet_weights_with_their_cfg_gives_the_same_numbers(trained) -> None:
    from_ckpt, _ = _val(trained, "ckpt2", f"weights={trained['best_ckpt']}")
    metrics, _ = _val(trained, "weights", f"model.cfg={trained['cfg']}", f"weights={trained['best_weights']}", "data=builtin", *BUILTIN)
    for key in ("val/precision", "val/recall", "val/mAP50", "val/mAP50_95", "val/params", "val/bflops"):
        assert metrics[key] == pytest.approx(from_ckpt[key], abs=1e-6), key


def test_class_rows_count_the_label_files_and_average_to_all(trained) -> None:
    _, artifacts = _val(trained, "rows", f"weights={trained['best_ckpt']}")
    table = json.loads(artifacts["json"].read_text())
    val_list = Path(trained["tmp"] / "data" / "builtin" / "val.txt").read_text().split()
    labels: Counter[int] = Counter()
    images: Counter[int] = Counter()
    for image in val_list:
        classes = [int(line.split()[0]) for line in Path(image).with_suffix(".txt").read_text().splitlines() if line.strip()]
        labels.update(classes)
        images.update(set(classes))
    rows = {r["name"]: r for r in table["classes"]}
    assert rows["all"]["images"] == len(val_list) and rows["all"]["labels"] == sum(labels.values())
    for k, name in enumerate(("disc", "plate")):
        assert (rows[name]["images"], rows[name]["labels"]) == (images[k], labels[k]), name
    present = [rows[n]["mAP50"] for n in ("disc", "plate") if rows[n]["labels"]]
    assert rows["all"]["mAP50"] == pytest.approx(sum(present) / len(present), abs=1e-9)


def test_a_model_for_other_classes_or_without_data_is_one_clear_error(trained) -> None:
    with pytest.raises(DataError, match=r"detects 3 classes but data=builtin, the data set .* was trained on has 2"):
        _val(trained, "classes", f"weights={trained['best_ckpt']}", "model.classes=3")
    with pytest.raises(ConfigError, match=r"val.py needs data=builtin or data=PATH"):
        _val(trained, "nodata", f"model.cfg={trained['cfg']}", f"weights={trained['best_weights']}")


def test_a_recorded_data_set_that_is_gone_names_the_checkpoint(trained, tmp_path, monkeypatch) -> None:
    import torch

    ckpt = torch.load(trained["best_ckpt"], map_location="cpu", weights_only=True)
    ckpt["datamodule_hyper_parameters"]["data"] = "relative/my.data"
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"relative/my.data.*data=relative/my.data, the data set .*moved.ckpt was trained on; give data=PATH"):
        _val(trained, "gone", f"weights={moved}")


@pytest.mark.openvino
@pytest.mark.slow
def test_val_of_the_exported_ir_agrees_with_the_pytorch_model(trained) -> None:
    from yolo_slim.export.task import export

    cfg = compose_config("export", f"weights={trained['best_ckpt']}", "export.exporter=torchscript", "export.evaluate=false",
                         f"paths.output_dir={trained['tmp'] / 'ir'}", f"paths.data_dir={trained['tmp'] / 'data'}")
    _, exported = export(cfg)
    torch_metrics, _ = _val(trained, "torch", f"weights={trained['best_ckpt']}")
    metrics, artifacts = _val(trained, "ir", f"weights={exported['xml']}", "data=builtin", *BUILTIN)
    assert "val/params" not in metrics and json.loads(artifacts["json"].read_text())["img_size"] == SIZE
    # the same images through OpenVINO's letterbox in original pixels: close, not bit-equal
    assert metrics["val/mAP50"] == pytest.approx(torch_metrics["val/mAP50"], abs=0.05)
