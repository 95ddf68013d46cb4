"""Where the configs are and where a command's project folder is.

The Hydra configs live in the repository's top-level `conf/`; the wheel carries the same
folder as the package `yolo_slim.conf` (`setup.py`), so `package_conf_dir` finds them in
a checkout (an editable install maps the package onto `conf/`) and in an installed
wheel alike.

Two environment variables carry the choice into the composed configs
(`conf/paths/default.yaml`), also into the processes Lightning's DDP launcher starts:

- ``PROJECT_ROOT`` (`paths.root_dir`): the checkout for `python train.py`, the current
  directory for `yolo-slim train` and the Python API. The output root defaults to it.
- ``YOLO_SLIM_CONF_DIR`` (`paths.conf_dir`): the `conf/` folder the command composes
  from (files such as the demo model's cfg are read from it).
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from yolo_slim.errors import ConfigError

ROOT_ENV = "PROJECT_ROOT"
CONF_ENV = "YOLO_SLIM_CONF_DIR"


def package_conf_dir() -> Path:
    """The `conf/` folder installed with this yolo_slim (`yolo_slim.conf`).

    Raises:
        ConfigError: the package has no configs (an install from before they were
            packaged, or a broken one).
    """
    try:
        folder = Path(str(importlib.resources.files("yolo_slim.conf")))
    except ModuleNotFoundError:
        raise ConfigError(
            "yolo_slim.conf is not installed: this install predates the packaged configs; "
            "reinstall yolo_slim (`pip install .`, or `pip install -e .` in a checkout)"
        ) from None
    if not (folder / "train.yaml").is_file():
        raise ConfigError(f"{folder}: yolo_slim's configs are missing (no train.yaml); reinstall yolo_slim")
    return folder


def set_locations(conf_dir: Path, project_root: Path) -> None:
    """Make `conf_dir` and `project_root` the `paths.conf_dir` and `paths.root_dir` of what is composed next."""
    os.environ[CONF_ENV] = str(Path(conf_dir).resolve())
    os.environ[ROOT_ENV] = str(Path(project_root).resolve())
