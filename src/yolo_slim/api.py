"""The Python API: every command as a function returning its metrics and artefact paths.

Each task takes a config made by `compose` (validated, its run folder chosen), or the
override strings to compose one from, exactly as the command line takes them::

    import yolo_slim

    cfg = yolo_slim.compose("train", "data=my.data", "trainer.max_epochs=10")
    metrics, artifacts = yolo_slim.train(cfg)
    metrics, artifacts = yolo_slim.val(f"weights={artifacts['best_ckpt']}")

Configs come from the `conf/` the package ships; runs go under the current directory
(``$YOLO_SLIM_OUTPUT_ROOT`` or ``paths.output_root=`` choose another root), as for
``yolo-slim``. While a task runs, its log lines (epochs, results, progress records) go to
the console when the program has not configured logging itself.

`yolo_slim.prune` and `yolo_slim.export` are packages as well as these functions: calling
the package runs the task (`callable_package`).
"""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from omegaconf import DictConfig

Result = tuple[dict[str, float], dict[str, Path]]
ConfigOrOverride = Union["DictConfig", str, None]


def compose(app: str, *overrides: str) -> DictConfig:
    """The validated config of one run of `app` with Hydra `overrides` (``key=value``, ``group=option``).

    Args:
        app: ``train``, ``val``, ``predict``, ``prune``, ``export``, ``detect`` or ``pipeline``.
        overrides: as on the command line, e.g. ``"experiment=yolov4_baseline"``, ``"data=my.data"``.

    Returns:
        The config the app's task runs with; ``paths.output_dir`` is this run's folder
        (``<root>/outputs/<app>/<run_name>/runs/<time>``, the pipeline's
        ``<root>/outputs/pipeline/<run_name>``).

    Raises:
        ConfigError: the same one-line errors as the command line.
    """
    from yolo_slim.config import APPS
    from yolo_slim.config.command import compose_run
    from yolo_slim.config.location import package_conf_dir
    from yolo_slim.errors import ConfigError

    if app not in APPS:
        raise ConfigError(f"unknown app {app!r}; expected one of {', '.join(APPS)}")
    return compose_run(app, list(overrides), package_conf_dir(), Path.cwd())


@contextmanager
def _console_logging() -> Iterator[None]:
    """yolo_slim's INFO records on the console during a task, unless the program configured logging."""
    from yolo_slim.progress import ConsoleHandler

    ours = logging.getLogger("yolo_slim")
    if logging.getLogger().hasHandlers():
        yield
        return
    handler = ConsoleHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = ours.level
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        ours.setLevel(old_level)


def _run(app: str, task: Callable[[Any], Any], cfg: ConfigOrOverride, overrides: tuple[str, ...]) -> Any:
    if cfg is None or isinstance(cfg, str):
        cfg = compose(app, *([cfg] if cfg else []), *overrides)
    elif overrides:
        from yolo_slim.errors import ConfigError

        raise ConfigError(f"{app}: give a composed config or override strings, not both (compose({app!r}, ...) takes the overrides)")
    with _console_logging():
        return task(cfg)


def train(cfg: ConfigOrOverride = None, *overrides: str) -> Result:
    """Train, fine-tune or resume (`yolo_slim.train_task.train`); returns ``(metrics, artifacts)``.

    Args:
        cfg: a config from ``compose("train", ...)``, or the first override string.
        overrides: more override strings (with a string `cfg`).
    """
    from yolo_slim.train_task import train as task

    return _run("train", task, cfg, overrides)


def val(cfg: ConfigOrOverride = None, *overrides: str) -> Result:
    """P, R, mAP@0.5 and mAP@0.5:0.95 per class of a model file (`yolo_slim.val_task.val`)."""
    from yolo_slim.val_task import val as task

    return _run("val", task, cfg, overrides)


def predict(cfg: ConfigOrOverride = None, *overrides: str) -> Result:
    """Detections of a model file on images, folders, videos, streams (`yolo_slim.predict_task.predict`)."""
    from yolo_slim.predict_task import predict as task

    return _run("predict", task, cfg, overrides)


def prune(cfg: ConfigOrOverride = None, *overrides: str) -> Result:
    """Channel and layer pruning (`yolo_slim.prune.task.prune`)."""
    from yolo_slim.prune.task import prune as task

    return _run("prune", task, cfg, overrides)


def export(cfg: ConfigOrOverride = None, *overrides: str) -> Result:
    """ONNX and OpenVINO IR (`yolo_slim.export.task.export`)."""
    from yolo_slim.export.task import export as task

    return _run("export", task, cfg, overrides)


def detect(cfg: ConfigOrOverride = None, *overrides: str) -> Result:
    """Multi-stream detection with an OpenVINO IR (`yolo_slim.deploy.task.detect`)."""
    from yolo_slim.deploy.task import detect as task

    return _run("detect", task, cfg, overrides)


def run_pipeline(cfg: ConfigOrOverride = None, *overrides: str) -> dict[str, dict[str, Any]]:
    """The whole process (`yolo_slim.pipeline.run_pipeline`); returns each finished stage's
    result (its ``metrics`` and ``artifacts``) by stage name."""
    from yolo_slim.pipeline.runner import run_pipeline as task

    return _run("pipeline", task, cfg, overrides)


class _TaskPackage(types.ModuleType):
    """A package that is also its task: calling it runs the API function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return globals()[self.__name__.rsplit(".", 1)[-1]](*args, **kwargs)


def callable_package(name: str) -> None:
    """Make the package `name` (``yolo_slim.prune``, ``yolo_slim.export``) callable as its task.

    ``import yolo_slim.prune.plan`` makes `yolo_slim.prune` that package (Python sets the
    attribute on import), so the package itself must be the function too.
    """
    sys.modules[name].__class__ = _TaskPackage
