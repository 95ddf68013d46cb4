"""detect.py's command line: `weights=PATH` is the IR, the old `model=`/`ir=` spellings are answered with it, the issue's command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import centre_inside, square_frame

ROOT = Path(__file__).parents[3]
HW = (120, 160)
BOXES = [(10, 10, 50, 50), (100, 60, 140, 100), (20, 70, 60, 110), (70, 20, 110, 60)]


def test_weights_is_the_ir_and_the_old_spellings_say_so(tmp_path):
    from yolo_slim.config.command import check_command
    from yolo_slim.errors import ConfigError

    checked = check_command("detect", ["weights=PATH/model.xml", "source=[a.mp4,b.mp4,c.mp4,d.mp4]", "mode=mosaic", "device=AUTO"], ROOT / "conf")
    cfg = checked.cfg
    assert cfg.weights == "PATH/model.xml" and list(cfg.source) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"] and cfg.mode == "mosaic"
    assert cfg.device == "auto"  # lower-cased; the OpenVINO device AUTO at run time
    for old in ("model", "ir"):
        with pytest.raises(ConfigError, match=rf"^{old}=PATH/model.xml: this is weights=PATH/model.xml now"):
            check_command("detect", [f"{old}=PATH/model.xml", "source=a.mp4"], ROOT / "conf")
    with pytest.raises(ConfigError, match=r"^output.dir=x: this is paths.output_dir=x now"):
        check_command("detect", ["weights=a.xml", "source=a.mp4", "output.dir=x"], ROOT / "conf")


@pytest.mark.openvino
@pytest.mark.slow
def test_issue_command_mosaic(square_ir, tmp_path):
    """`python detect.py weights=PATH/model.xml source=[a.mp4,b.mp4,c.mp4,d.mp4] mode=mosaic`, verbatim, in a subprocess
    (slow: a fresh interpreter imports torch and OpenVINO; `test_weights_is_the_ir_and_the_old_spellings_say_so` covers the parsing)."""
    for k, name in enumerate("abcd"):
        writer = cv2.VideoWriter(str(tmp_path / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, HW[::-1])
        for _ in range(3):
            writer.write(square_frame(HW, BOXES[k]))
        writer.release()
    cmd = [sys.executable, str(ROOT / "detect.py"), f"weights={square_ir}", "source=[a.mp4,b.mp4,c.mp4,d.mp4]", "mode=mosaic",
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
