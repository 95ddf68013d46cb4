"""The `yolo-slim` command from a wheel installed into a fresh virtual environment, run outside the checkout.

The wheel is built from a copy of the sources (nothing is written into the checkout) and
installed without its dependencies, which a `.pth` file borrows from this environment
(offline and quick); the checkout is not importable there, so everything the commands
read (the configs, the demo model's cfg) must come from the wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["img_size=64", "builtin.n_train=8", "builtin.n_val=4", "loader.batch_size=4", "loader.num_workers=0", "device=cpu"]


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("src", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PROJECT_ROOT", "YOLO_SLIM_CONF_DIR", "YOLO_SLIM_OUTPUT_ROOT", "PYTHONPATH")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(source), "-w", str(tmp / "dist")],
         tmp, env)
    (wheel,) = (tmp / "dist").glob("yolo_slim-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).strip())
    (purelib / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co, not yolo_slim
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp, env)
    work = tmp / "elsewhere"
    work.mkdir()
    return {"venv": venv, "python": python, "cli": venv / "bin" / "yolo-slim", "work": work, "env": env, "purelib": purelib}


@pytest.mark.slow
def test_the_installed_command_runs_every_kind_of_command_outside_the_checkout(installed) -> None:
    work, env, cli = installed["work"], installed["env"], str(installed["cli"])
    where = _run([str(installed["python"]), "-c", "import importlib.resources as r, yolo_slim; print(yolo_slim.__file__); "
                  "print(r.files('yolo_slim.conf') / 'train.yaml')"], work, env).split()
    assert all(Path(p).is_relative_to(installed["purelib"]) and Path(p).is_file() for p in where), where  # the wheel, not the checkout

    assert "BFLOPs" in _run([cli, "info", "yolov4-tiny"], work, env)
    dry = _run([cli, "train", "experiment=yolov4_baseline", "data=my.data", "device=cpu", "dry_run=true"], work, env)
    assert dry.strip() == "dry run: yolo-slim train config is valid (data=my.data, img_size=416, device=cpu)"

    _run([cli, "train", *TINY, "trainer.max_epochs=1", "logger=csv", "trainer.enable_progress_bar=false", "model.nominal_batch_size=4",
          "run_name=wheel"], work, env)
    (best,) = (work / "outputs" / "train" / "wheel" / "runs").glob("*/checkpoints/best.ckpt")
    assert (work / "data_cache" / "builtin" / "synthetic.data").is_file()  # generated data under the current directory too
    table = _run([cli, "val", f"weights={best}", "loader.num_workers=0", "device=cpu"], work, env)
    assert "class  images  labels" in table
    assert all(re.search(rf"^\s*{name}\s+\d+\s+\d+\s", table, flags=re.M) for name in ("all", "disc", "plate")), table
    (report,) = (work / "outputs" / "val" / "default" / "runs").glob("*/val.md")
    assert report.read_text().startswith("# Validation")
    assert sorted(p.name for p in work.iterdir()) == ["data_cache", "outputs"]
