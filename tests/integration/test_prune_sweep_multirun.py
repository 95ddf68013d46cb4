"""Prune sweeps end to end on a tiny built-in dataset (4 val images at 64 px):
the sweep callback over real job dirs (an untrained model gets no optimal point; a
point whose recall collapsed is never optimal), prune.search=true, and (slow) a real
`prune.py -m` multirun in a subprocess with one failing job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

import yolo_slim.prune.task as task
from yolo_slim.data import YoloDataModule
from yolo_slim.model import Darknet
from yolo_slim.prune.search import max_evaluations
from yolo_slim.prune.sweep import PruneSweepCallback
from yolo_slim.prune.task import prune

ROOT = Path(__file__).parents[2]
CONF = ROOT / "conf"


def tiny(data_root: Path) -> list[str]:
    return [
        "model.cfg=yolov4-tiny", "latency_runs=1", "eval.conf_thres=0.2", "img_size=64",
        "loader.batch_size=4", "loader.num_workers=0", "loader.cache=false",
        f"paths.data_dir={data_root}", "builtin.n_train=2", "builtin.n_val=4",
    ]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")  # the built-in data is generated into data_root/builtin on first use


def _compose(*overrides: str, hydra_cfg: bool = False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="prune", overrides=list(overrides), return_hydra_config=hydra_cfg)


def _sweep(sweep: Path, data_root: Path, percents: tuple[str, ...], *overrides: str) -> dict:
    """Prune jobs at `percents` into `sweep`, then the multirun callback; optimal.json."""
    for i, gp in enumerate(percents):
        prune(_compose(*tiny(data_root), *overrides, f"prune.global_percent={gp}", f"paths.output_dir={sweep / str(i)}"))
    config = _compose(*tiny(data_root), *overrides, f"hydra.sweep.dir={sweep}", hydra_cfg=True)
    assert config.hydra.callbacks.prune_sweep._target_ == "yolo_slim.prune.sweep.PruneSweepCallback"
    PruneSweepCallback().on_multirun_end(config)
    assert all((sweep / name).is_file() for name in ("sweep.md", "sweep.csv", "sweep.png", "optimal.json"))
    return json.loads((sweep / "optimal.json").read_text())


def test_sweep_of_an_untrained_model_has_no_optimal_point(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    optimal = _sweep(sweep, data_root, ("0.3", "0.6"))
    reference = json.loads((sweep / "0" / "report.json").read_text())["rows"]["original"]["mAP50"]
    assert reference < 0.1  # untrained weights detect nothing
    assert optimal["setting"] is None and f"unpruned mAP {reference:.3f} < min_map 0.1" in optimal["reason"]
    lines = (sweep / "sweep.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[1].startswith("unpruned,") and lines[1].endswith(",reference")
    assert all(f"unpruned mAP {reference:.3f} < min_map 0.1" in line for line in lines[2:])
    plan = json.loads((sweep / "1" / "plan.json").read_text())
    assert "| global_percent | threshold | cut (achieved) |" in (sweep / "sweep.md").read_text()
    assert f"| {plan['global_percent']:.3f} | {plan['threshold']:.3g} | {plan['achieved_percent']:.3f} |" in (sweep / "sweep.md").read_text()


def test_sweep_never_picks_a_point_whose_recall_collapsed(tmp_path, data_root, monkeypatch):
    # real prune jobs on seeded weights with spread gammas; the quality is synthetic: mAP@0.5
    # hardly moves while the recall falls with the surviving channels (power 1.5), so at
    # 0.6 the recall has collapsed although mAP@0.5 is within every tolerance
    model = Darknet.from_cfg("yolov4-tiny", classes=2, img_size=64)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for block in model.conv_blocks().values():
            if block.bn is not None:
                block.bn.weight.copy_(torch.from_numpy(rng.uniform(0.05, 1.0, block.bn.num_features).astype(np.float32)))
    weights = model.save_darknet_weights(tmp_path / "spread.weights")
    total = sum(b.bn.num_features for b in model.conv_blocks().values() if b.bn is not None)

    def quality(net, batches, num_classes, e, progress=None):
        alive = sum(int((b.bn.weight != 0).sum()) for b in net.conv_blocks().values() if b.bn is not None) / total
        return {"precision": 1.0 - 0.5 * alive, "recall": 0.6 * alive**1.5, "mAP50": 0.5 - 0.01 * (1 - alive), "mAP50_95": 0.2}

    monkeypatch.setattr(task, "evaluate", quality)
    sweep = tmp_path / "sweep"
    optimal = _sweep(sweep, data_root, ("0.1", "0.6"), f"weights={weights}", "prune.tolerance=0.05", "prune.keep_map=0.9")
    rows = {j: json.loads((sweep / j / "report.json").read_text())["rows"]["pruned"] for j in "01"}
    assert rows["1"]["recall"] < 0.8 * 0.6 <= rows["0"]["recall"] and rows["1"]["mAP50"] >= 0.5 - 0.05
    assert optimal["setting"] == "channel global_percent=0.1" and Path(optimal["cfg"]) == sweep / "0" / "pruned.cfg"
    md = (sweep / "sweep.md").read_text()
    assert f"recall collapsed {rows['1']['recall']:.3f} < 0.8 x 0.600" in md


def test_search_run_reports_its_trace_and_loads_data_once(tmp_path, data_root, monkeypatch):
    calls = []
    original = YoloDataModule.val_dataloader
    monkeypatch.setattr(YoloDataModule, "val_dataloader", lambda self: calls.append(1) or original(self))
    metrics, artifacts = prune(
        _compose(*tiny(data_root), "prune.search=true", "prune.tolerance=0.05", "prune.min_map=0", "prune.search_options.coarse=3",
                 "prune.search_options.resolution=0.2", f"paths.output_dir={tmp_path}")
    )
    assert len(calls) == 1  # original, every search point, masked and compact share one decoded list of batches
    search = json.loads(artifacts["report_json"].read_text())["search"]
    assert search["axis"] == "global_percent" and 1 <= search["evaluations"] <= search["bound"] == max_evaluations(0, 0.95, 3, 0.2)
    assert metrics["prune/search_evaluations"] == search["evaluations"]
    assert metrics["prune/search_global_percent"] == search["best"]
    assert "## Search over global_percent" in artifacts["report_md"].read_text()


def test_search_needs_data(tmp_path):
    from yolo_slim.errors import ConfigError

    with pytest.raises(ConfigError, match="prune.search=true needs a dataset"):
        prune(_compose("data=none", "model.cfg=yolov4-tiny", "model.classes=2", "prune.search=true", f"paths.output_dir={tmp_path}"))


@pytest.mark.slow
def test_multirun_writes_the_sweep_and_lists_failures(tmp_path, data_root):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "prune.py"), "-m", "prune.global_percent=0.3,0.6,1.0", *tiny(data_root), f"paths.log_dir={tmp_path}"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "global_percent=1.0 is outside [0.0, 1.0)" in done.stderr
    (sweep,) = (tmp_path / "prune" / "default" / "multiruns").iterdir()
    md = (sweep / "sweep.md").read_text()
    assert "failed: prune.global_percent=1.0: global_percent=1.0 is outside" in md
    assert "| channel global_percent=0.3 |" in md and "global_percent=0.6" in md.split("| setting |")[1] and (sweep / "sweep.png").is_file()
    assert json.loads((sweep / "optimal.json").read_text())["reason"]
