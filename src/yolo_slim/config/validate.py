"""`validate_config(cfg, app)`: the check every app runs first, before any work.

In order: the experiment is one for this app; the config matches the app's schema
(`yolo_slim.config.schema`: types converted, unknown keys refused); the values the
experiment (or the app) requires are given; the device is one of auto/cpu/gpu and is
there; then the app's own checks. Every failure is a `ConfigError` with one line
naming the key, e.g. ``prune.global_percent: expected a float, got 'abc'`` or
``experiment yolov4_sparse needs weights=PATH (the baseline's best.weights or last.ckpt)``.

Nothing here reads a data set, a model file or any other file: file existence is a
run-time matter, so `dry_run=true` and the documentation tests can validate commands
with placeholder paths.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf, SCMode
from omegaconf.errors import OmegaConfBaseException

from yolo_slim.config.datasets import has_data
from yolo_slim.config.devices import check_available, normalise_device
from yolo_slim.config.messages import omegaconf_error
from yolo_slim.config.schema import SCHEMAS, Sparsity, TrainerTypes
from yolo_slim.config.sizes import is_checkpoint, is_openvino_ir
from yolo_slim.errors import ConfigError

_UNSET = object()


def schema_of(app: str) -> DictConfig:
    """The app's schema as an OmegaConf structured config (for messages and key lists)."""
    if app not in SCHEMAS:
        raise ConfigError(f"unknown app {app!r}; expected one of {', '.join(SCHEMAS)}")
    return OmegaConf.structured(SCHEMAS[app])


def _missing_keys(node: object, prefix: str = "") -> list[str]:
    """Dotted keys whose value is ``???`` in a plain container (interpolations left unresolved)."""
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in _missing_keys(value, f"{prefix}{key}.")]
    if isinstance(node, list):
        return [k for i, value in enumerate(node) for k in _missing_keys(value, f"{prefix}{i}.")]
    return [prefix[:-1]] if node == "???" else []


def _typed(cfg: DictConfig, schema: DictConfig, prefix: str = "", partial: bool = False) -> DictConfig:
    """`cfg` merged onto `schema`, as a plain (struct) DictConfig with converted values.

    With `partial`, keys of the schema that `cfg` lacks are allowed (only the given ones
    are type-checked); otherwise each needs a value.
    """
    try:
        merged = OmegaConf.merge(schema, cfg)
    except OmegaConfBaseException as exc:
        message = omegaconf_error(exc, schema)
        raise ConfigError(f"{prefix}{message}" if prefix else message) from None
    container = OmegaConf.to_container(merged, resolve=False, structured_config_mode=SCMode.DICT)
    missing = _missing_keys(container)
    if missing and not partial:
        raise ConfigError(f"{prefix}{missing[0]}: no value (every key needs one in conf/; set {prefix}{missing[0]}=...)")
    plain = OmegaConf.create(container)
    OmegaConf.set_struct(plain, True)
    return plain


def check_experiment_app(cfg: DictConfig, app: str) -> None:
    """Refuse an experiment overlay made for another app.

    Raises:
        ConfigError: ``experiment demo is for pipeline.py, not train.py``.
    """
    info = cfg.get("experiment")
    name = info.get("name") if isinstance(info, DictConfig) else None
    apps = list(info.get("apps") or []) if isinstance(info, DictConfig) else []
    if name and app not in apps:
        made_for = " or ".join(f"{a}.py" for a in apps) or "no app (its experiment.apps is empty)"
        raise ConfigError(f"experiment {name} is for {made_for}, not {app}.py")


def missing_required(cfg: DictConfig) -> list[tuple[str, str]]:
    """The `requires` entries whose key has no value (null, empty or ``???``), in order.

    Raises:
        ConfigError: a `requires` entry names a key the config does not have.
    """
    missing = []
    for key, hint in (cfg.get("requires") or {}).items():
        value = OmegaConf.select(cfg, str(key), default=_UNSET, throw_on_missing=False)
        if value is _UNSET:
            raise ConfigError(f"requires.{key}: the config has no key {key!r} (a typo in the experiment file?)")
        if value is None or str(value).strip() in ("", "???"):
            missing.append((str(key), str(hint)))
    return missing


def check_required(cfg: DictConfig, app: str) -> None:
    """Every required value is given, else one line naming them all with an example.

    Raises:
        ConfigError: ``experiment yolov4_sparse needs weights=PATH (the baseline's best.weights or last.ckpt)``.
    """
    missing = missing_required(cfg)
    if missing:
        name = (cfg.get("experiment") or {}).get("name")
        who = f"experiment {name}" if name else f"{app}.py"
        raise ConfigError(f"{who} needs " + " and ".join(f"{key}={hint}" for key, hint in missing))


def _check_model_source(cfg: DictConfig, app: str, required: bool) -> None:
    if required and not cfg.model.cfg and not is_checkpoint(cfg.weights):
        raise ConfigError(f"{app}.py needs model.cfg=NAME_OR_PATH (a zoo name or .cfg file), or weights=PATH.ckpt (it carries its cfg)")


def _check_model_file(cfg: DictConfig, app: str, required: bool) -> None:
    """val and predict: a `.ckpt`, an OpenVINO IR, or a model.cfg (with `.weights` or none)."""
    if is_openvino_ir(cfg.weights):
        if cfg.model.cfg or cfg.model.classes:
            raise ConfigError(f"weights={cfg.weights} is an OpenVINO IR: it is its own model; drop model.cfg and model.classes")
        return
    if required and not cfg.model.cfg and not is_checkpoint(cfg.weights):
        raise ConfigError(f"{app}.py needs model.cfg=NAME_OR_PATH with weights=PATH.weights, or weights=PATH.ckpt (it carries its cfg), "
                          "or weights=PATH/model.xml (an OpenVINO IR)")


def _check_val(cfg: DictConfig, required: bool) -> None:
    _check_model_file(cfg, "val", required)
    if required and not has_data(cfg.data) and not is_checkpoint(cfg.weights):
        raise ConfigError("val.py needs data=builtin or data=PATH (a .data file, data.yaml, COCO json or dataset folder); "
                          "only a training run's .ckpt knows the data set it was trained on")


def _check_data(cfg: DictConfig, app: str, required: bool) -> None:
    if required and not has_data(cfg.data):
        raise ConfigError(f"{app}.py needs data=builtin or data=PATH (a .data file or dataset folder)")


def _check_train(cfg: DictConfig, required: bool) -> None:
    _check_data(cfg, "train", required)
    if cfg.resume not in (None, "auto"):
        raise ConfigError(f"resume must be 'auto' or null, got {cfg.resume!r} (to resume from a file use ckpt_path=PATH)")
    if "accelerator" in cfg.trainer:
        raise ConfigError("trainer.accelerator: the accelerator is device=auto|cpu|gpu (one key for every app)")
    import pytorch_lightning as pl

    known = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self", "callbacks", "logger"}
    for key in cfg.trainer:
        if key != "_target_" and key not in known:
            raise ConfigError(f"trainer.{key}: not an argument of pytorch_lightning.Trainer")
    typed_keys = set(TrainerTypes.__dataclass_fields__)
    given = OmegaConf.to_container(cfg.trainer, resolve=False)
    subset = OmegaConf.create({k: v for k, v in given.items() if k in typed_keys})
    _typed(subset, OmegaConf.structured(TrainerTypes), prefix="trainer.", partial=True)
    if "bn_sparsity" in (cfg.callbacks or {}):
        _typed(cfg.callbacks.bn_sparsity, OmegaConf.structured(Sparsity), prefix="callbacks.bn_sparsity.")
    from yolo_slim.lit.anchors import fit_mode
    from yolo_slim.lit.budget import BudgetSpec

    BudgetSpec.from_config(OmegaConf.to_container(cfg.budget, resolve=True))
    fit_mode(cfg.model.fit_anchors)


def _check_prune(cfg: DictConfig, required: bool) -> None:
    from yolo_slim.prune.accept import Acceptance
    from yolo_slim.prune.plan import CUT_BY
    from yolo_slim.prune.sweep import OPTIMAL_AXES

    _check_model_source(cfg, "prune", required)
    if cfg.prune.cut_by not in CUT_BY:
        raise ConfigError(f"prune.cut_by={cfg.prune.cut_by!r}: expected {' or '.join(CUT_BY)} (what global_percent means; docs/pruning.md)")
    if cfg.prune.optimal_axis not in OPTIMAL_AXES:
        raise ConfigError(f"prune.optimal_axis={cfg.prune.optimal_axis!r}: expected {' or '.join(OPTIMAL_AXES)}")
    Acceptance.from_config(cfg.prune, "prune")
    _check_recalibrate(cfg.prune.recalibrate_bn, "prune")
    multiple = cfg.prune.channel_multiple
    if str(multiple) != "auto" and (isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1):
        raise ConfigError(f"prune.channel_multiple={multiple!r}: expected an integer >= 1 or auto (the channel quantum measured on prune.latency.device)")
    if cfg.prune.latency_measured_rounds < 0:
        raise ConfigError(f"prune.latency_measured_rounds={cfg.prune.latency_measured_rounds}: expected an integer >= 0 "
                          "(whole-network measurements that correct the latency plan; 0: the table's prediction alone)")
    if not 0 < cfg.prune.latency_tolerance < 1:
        raise ConfigError(f"prune.latency_tolerance={cfg.prune.latency_tolerance}: expected a number between 0 and 1 "
                          "(the relative error of the measured latency a plan may keep, 0.1: 10 %)")


def _check_recalibrate(value: int, prefix: str) -> None:
    if value < 0:
        raise ConfigError(f"{prefix}.recalibrate_bn={value} must be an integer >= 0 (training images to re-estimate BatchNorm statistics on after surgery; 0: off)")


def _check_pipeline(cfg: DictConfig, required: bool) -> None:
    from yolo_slim.pipeline.context import forced_stages, stage_list
    from yolo_slim.prune.accept import Acceptance

    _check_data(cfg, "pipeline", required)
    stage_list(cfg)
    forced_stages(cfg)
    for sweep in ("channel_sweep", "layer_sweep", "latency_sweep"):
        Acceptance.from_config(cfg[sweep], sweep)
        _check_recalibrate(cfg[sweep].recalibrate_bn, sweep)
        if cfg[sweep].recover_steps < 0:
            raise ConfigError(f"{sweep}.recover_steps={cfg[sweep].recover_steps} must be an integer >= 0 (optimizer steps of "
                              "fine-tuning a point the sweep rejects as cut gets before it is judged again; 0: off)")


_APP_CHECKS: dict[str, Callable[[DictConfig, bool], None]] = {
    "train": _check_train,
    "val": _check_val,
    "predict": lambda cfg, required: _check_model_file(cfg, "predict", required),
    "prune": _check_prune,
    "export": lambda cfg, required: _check_model_source(cfg, "export", required),
    "detect": lambda cfg, required: None,
    "pipeline": _check_pipeline,
}

def _model_runtime(cfg: DictConfig) -> str:
    """val and predict run an OpenVINO IR on OpenVINO, every other model file on torch."""
    return "openvino" if is_openvino_ir(cfg.get("weights")) else "torch"


# (key, runtime) of the device keys each app has; a callable runtime depends on the config
_DEVICE_KEYS: dict[str, tuple[tuple[str, str | Callable[[DictConfig], str]], ...]] = {
    "train": (("device", "torch"),),
    "val": (("device", _model_runtime),),
    "predict": (("device", _model_runtime),),
    "prune": (("device", "torch"), ("prune.latency.device", "openvino")),
    "export": (("device", "openvino"),),
    "detect": (("device", "openvino"),),
    "pipeline": (("device", "torch"), ("deploy_device", "openvino")),
}


def validate_config(cfg: DictConfig, app: str, *, required: bool = True) -> DictConfig:
    """Check a composed config of `app` and return it typed (values converted, devices lower-case).

    Args:
        cfg: the composed config (`conf/<app>.yaml` with overrides).
        app: one of `SCHEMAS` (``train``, ``val``, ``predict``, ``prune``, ``export``, ``detect``, ``pipeline``).
        required: also check the required values (``--cfg`` printing skips that).

    Raises:
        ConfigError: the first problem, as one line naming the key.
    """
    check_experiment_app(cfg, app)
    typed = _typed(cfg, schema_of(app))
    if required:
        check_required(typed, app)
    for key, runtime in _DEVICE_KEYS[app]:
        device = normalise_device(OmegaConf.select(typed, key), key)
        OmegaConf.update(typed, key, device)
        check_available(device, runtime(typed) if callable(runtime) else runtime, key)
    if typed.get("img_size") is not None and typed.img_size < 1:
        raise ConfigError(f"img_size: expected a positive number of pixels or null (the model's own size), got {typed.img_size}")
    _APP_CHECKS[app](typed, required)
    return typed
