"""`output_dir`: the one way every task finds its run folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from yolo_slim.config.location import output_dir
from yolo_slim.errors import ConfigError


def test_output_dir_is_the_resolved_key(tmp_path: Path) -> None:
    cfg = OmegaConf.create({"paths": {"root": str(tmp_path), "output_dir": "${paths.root}/run"}})
    assert output_dir(cfg) == tmp_path / "run"


def test_output_dir_outside_hydra_is_one_clear_error() -> None:
    cfg = OmegaConf.create({"paths": {"output_dir": "${hydra:runtime.output_dir}"}})
    with pytest.raises(ConfigError, match=r"paths.output_dir cannot be resolved outside a Hydra run; set it"):
        output_dir(cfg)
