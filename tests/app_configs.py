"""The apps' real configs for tests: `compose_config("export", "model.cfg=yolov4-tiny", ...)`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose_config(app: str, *overrides: str, values: Mapping[str, Any] | None = None) -> DictConfig:
    """`conf/<app>.yaml` composed with `overrides` (paths.root_dir set to the checkout), then `values` merged.

    The result is what the app's task receives; the task validates it.
    """
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(app, overrides=[f"paths.root_dir={ROOT}", *overrides])
    return OmegaConf.merge(cfg, dict(values)) if values else cfg
