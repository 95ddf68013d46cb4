"""Every experiment in conf/experiment/ (found by glob) composes for each app it names, and
each value it requires is required: left out, it is null in the config (never a silent
default) and the app stops with one line naming it."""

from __future__ import annotations


import pytest
from omegaconf import OmegaConf

from app_configs import CONF, compose_config
from yolo_slim.config import APPS, validate_config
from yolo_slim.errors import ConfigError

EXPERIMENTS = sorted(CONF.glob("experiment/*.yaml"))
CASES = [(path.stem, app) for path in EXPERIMENTS for app in OmegaConf.load(path).experiment.apps]
PLACEHOLDER = "PLACEHOLDER/file"  # validation never opens files


def _meta(name: str):
    return OmegaConf.load(CONF / "experiment" / f"{name}.yaml")


def test_every_experiment_names_itself_and_its_apps() -> None:
    assert len(EXPERIMENTS) >= 13
    for path in EXPERIMENTS:
        meta = OmegaConf.load(path)
        assert meta.experiment.name == path.stem, path
        assert meta.experiment.apps and set(meta.experiment.apps) <= set(APPS), path
        assert "???" not in path.read_text(), f"{path}: ??? does not make a key required; use null and requires:"


@pytest.mark.parametrize(("name", "app"), CASES)
def test_experiment_composes_with_its_required_values(name: str, app: str) -> None:
    required = [str(k) for k in (_meta(name).get("requires") or {})]
    cfg = validate_config(compose_config(app, f"experiment={name}", *(f"{key}={PLACEHOLDER}" for key in required)), app)
    assert cfg.experiment.name == name and cfg.run_name == name
    for key in required:
        assert OmegaConf.select(cfg, key) == PLACEHOLDER
    OmegaConf.to_container(cfg, resolve=False)
    if app == "pipeline":  # every stage's task config composes and validates too
        from yolo_slim.pipeline import run_pipeline

        dry = OmegaConf.merge(cfg, {"dry_run": True})
        assert run_pipeline(dry) == {}


@pytest.mark.parametrize(("name", "app"), CASES)
def test_each_required_value_left_out_is_null_and_named(name: str, app: str) -> None:
    requires = dict(_meta(name).get("requires") or {})
    bare = compose_config(app, f"experiment={name}")  # what `--cfg job` shows
    for key in requires:
        assert OmegaConf.select(bare, key) is None, f"{name}: {key} is silently defaulted"
    if not requires:
        validate_config(bare, app)  # the demo experiments run with no arguments
        return
    listed = " and ".join(f"{key}={hint}" for key, hint in requires.items())
    with pytest.raises(ConfigError, match=f"^experiment {name} needs {_re(listed)}$"):
        validate_config(bare, app)
    for key, hint in requires.items():
        others = [f"{k}={PLACEHOLDER}" for k in requires if k != key]
        with pytest.raises(ConfigError, match=f"^experiment {name} needs {_re(f'{key}={hint}')}$"):
            validate_config(compose_config(app, f"experiment={name}", *others), app)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_the_brief_example_message() -> None:
    with pytest.raises(ConfigError, match=r"^experiment yolov4_sparse needs weights=PATH \(the baseline's best.weights or last.ckpt\)$"):
        validate_config(compose_config("train", "experiment=yolov4_sparse", "data=my.data"), "train")


def test_an_experiment_for_another_app_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^experiment demo is for pipeline.py, not train.py$"):
        validate_config(compose_config("train", "experiment=demo"), "train")
    from yolo_slim.config.command import check_command

    with pytest.raises(ConfigError, match=r"^experiment yolov4_sparse is for train.py, not prune.py$"):
        check_command("prune", ["experiment=yolov4_sparse"], CONF)


def test_gpu_experiments_use_device_auto() -> None:
    for path in EXPERIMENTS:
        if path.stem.startswith(("yolov4", "yolov3")):
            assert OmegaConf.load(path).device == "auto", path
