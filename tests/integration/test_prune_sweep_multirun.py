"""Prune sweeps end to end on a tiny built-in dataset (4 val images at 64 px):
the sweep callback over real job dirs, prune.search=true, and (slow) a real
`prune.py -m` multirun in a subprocess with one failing job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from yolo_slim.data import YoloDataModule
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


def test_sweep_callback_over_job_dirs(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    for i, gp in enumerate(("0.3", "0.6")):
        prune(_compose(*tiny(data_root), f"prune.global_percent={gp}", f"paths.output_dir={sweep / str(i)}"))
    config = _compose(*tiny(data_root), f"hydra.sweep.dir={sweep}", hydra_cfg=True)
    assert config.hydra.callbacks.prune_sweep._target_ == "yolo_slim.prune.sweep.PruneSweepCallback"
    PruneSweepCallback().on_multirun_end(config)
    assert all((sweep / name).is_file() for name in ("sweep.md", "sweep.csv", "sweep.png", "optimal.json"))
    lines = (sweep / "sweep.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[1].startswith("unpruned,")
    optimal = json.loads((sweep / "optimal.json").read_text())
    reference = json.loads((sweep / "0" / "report.json").read_text())["rows"]["original"]["mAP50"]
    # untrained weights: every setting's mAP@0.5 is (near) the reference's, so the strongest wins when within 0.01
    if all(abs(json.loads((sweep / j / "report.json").read_text())["rows"]["pruned"]["mAP50"] - reference) <= 0.01 for j in "01"):
        assert optimal["setting"] == "channel global_percent=0.6" and Path(optimal["cfg"]) == sweep / "1" / "pruned.cfg"
    else:
        assert optimal["reason"]


def test_search_run_reports_its_trace_and_loads_data_once(tmp_path, data_root, monkeypatch):
    calls = []
    original = YoloDataModule.val_dataloader
    monkeypatch.setattr(YoloDataModule, "val_dataloader", lambda self: calls.append(1) or original(self))
    metrics, artifacts = prune(
        _compose(*tiny(data_root), "prune.search=true", "prune.tolerance=0.05", "prune.search_options.coarse=3",
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
