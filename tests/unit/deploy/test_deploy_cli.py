"""detect.py's command line: `model=PATH` is the IR (not the conf/model group), `ir=` its alias, the issue's exact command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import centre_inside, square_frame
from omegaconf import OmegaConf

ROOT = Path(__file__).parents[3]
HW = (120, 160)
BOXES = [(10, 10, 50, 50), (100, 60, 140, 100), (20, 70, 60, 110), (70, 20, 110, 60)]


def test_model_override_is_a_value_not_a_group():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf" / "detect"), version_base="1.3"):
        cfg = compose("detect", overrides=["model=PATH/model.xml", "source=[a.mp4,b.mp4,c.mp4,d.mp4]", "mode=mosaic"])
    assert cfg.model == "PATH/model.xml" and list(cfg.source) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"] and cfg.mode == "mosaic"


def test_model_path_alias_and_errors():
    from yolo_slim.deploy.task import model_path
    from yolo_slim.errors import ConfigError

    assert model_path(OmegaConf.create({"model": None, "ir": "x/model.xml"})) == Path("x/model.xml")
    assert model_path(OmegaConf.create({"model": "x/model.xml", "ir": "x/model.xml"})) == Path("x/model.xml")
    with pytest.raises(ConfigError, match="set model=PATH"):
        model_path(OmegaConf.create({"model": None, "ir": None}))
    with pytest.raises(ConfigError, match="name different IRs"):
        model_path(OmegaConf.create({"model": "a.xml", "ir": "b.xml"}))


@pytest.mark.openvino
@pytest.mark.slow
def test_issue_command_mosaic(square_ir, tmp_path):
    """`python detect.py model=PATH/model.xml source=[a.mp4,b.mp4,c.mp4,d.mp4] mode=mosaic`, verbatim, in a subprocess
    (slow: a fresh interpreter imports torch and OpenVINO; `test_model_override_is_a_value_not_a_group` covers the parsing)."""
    for k, name in enumerate("abcd"):
        writer = cv2.VideoWriter(str(tmp_path / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, HW[::-1])
        for _ in range(3):
            writer.write(square_frame(HW, BOXES[k]))
        writer.release()
    cmd = [sys.executable, str(ROOT / "detect.py"), f"model={square_ir}", "source=[a.mp4,b.mp4,c.mp4,d.mp4]", "mode=mosaic",
           "progress=false", "hydra.run.dir=run"]
    done = subprocess.run(cmd, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "detect/failed: 0" in done.stdout
    from yolo_slim.deploy.writers import read_jsonl

    records = read_jsonl(tmp_path / "run" / "detections.jsonl")
    assert len(records) == 12
    for rec in records:
        k = int(rec["stream"].split("_")[0])
        assert centre_inside(np.array(rec["detections"], np.float32).reshape(-1, 6), BOXES[k], margin=2), rec
    assert sorted(p.name for p in (tmp_path / "run").glob("*.avi")) == ["0_a.avi", "1_b.avi", "2_c.avi", "3_d.avi"]
