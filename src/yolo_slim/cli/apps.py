"""The Hydra apps (train, val, predict, prune, export, detect, pipeline) behind the entry scripts.

`run_app(app, conf_dir)` is all an entry script does, and what `yolo-slim <app>` does with
the configs the package ships: it checks the command line first
(`yolo_slim.config.command.check_command`: one line and exit status 2 for any misuse,
before Hydra makes a run dir), stops there for ``dry_run=true``, and otherwise runs the
app's task under `hydra.main` with the same config. A `YoloSlimError` raised by the task
prints as one line, exit status 2, and removes the run dir when nothing but Hydra's own
files is in it (`yolo_slim.io.run_dir`); an interrupt (Ctrl-C, SIGTERM, SIGHUP) prints one line
and exits 128 + the signal number, after every temporary file is removed
(`yolo_slim.cli.guard.run_command`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig

from yolo_slim.errors import YoloSlimError

log = logging.getLogger(__name__)


def _print_results(metrics: dict[str, float], artifacts: dict[str, Path], digits: int = 6) -> None:
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.{digits}g}")
    for key, path in artifacts.items():
        print(f"{key}: {path}")


def _train(cfg: DictConfig) -> None:
    from yolo_slim.train_task import train

    train(cfg)


def _val(cfg: DictConfig) -> None:
    from yolo_slim.val_task import val

    val(cfg)  # prints its table and where it wrote it


def _predict(cfg: DictConfig) -> None:
    from yolo_slim.predict_task import predict

    predict(cfg)  # prints where its outputs went


def _prune(cfg: DictConfig) -> None:
    from yolo_slim.cli.guard import run_command
    from yolo_slim.prune.sweep import fail_job
    from yolo_slim.prune.task import prune

    # a user error exits 2; in a multirun it is recorded so the other jobs and the sweep table go on
    result = run_command(lambda: prune(cfg), "prune", on_error=lambda error: fail_job(error, Path(cfg.paths.log_dir)))
    if result is not None:
        _print_results(*result)


def _export(cfg: DictConfig) -> None:
    from yolo_slim.export.task import export

    _print_results(*export(cfg))


def _detect(cfg: DictConfig) -> None:
    from yolo_slim.deploy.task import detect

    metrics, _ = detect(cfg)
    _print_results(metrics, {}, digits=4)
    if metrics["detect/failed"]:
        sys.exit(1)


def _pipeline(cfg: DictConfig) -> None:
    from yolo_slim.pipeline import run_pipeline

    run_pipeline(cfg)


TASKS: dict[str, Callable[[DictConfig], None]] = {
    "train": _train,
    "val": _val,
    "predict": _predict,
    "prune": _prune,
    "export": _export,
    "detect": _detect,
    "pipeline": _pipeline,
}
"""App name -> what its command runs with the composed config."""

APPS: tuple[str, ...] = tuple(TASKS)

NATIVE_MODULES: dict[str, tuple[str, ...]] = {
    "export": ("onnx", "openvino", "nncf"),
    "prune": ("onnx", "openvino"),
    "detect": ("openvino",),
    "val": ("openvino",),
    "pipeline": ("onnx", "openvino", "nncf"),
}
"""App name -> the C-extension packages its task imports lazily, imported up front with
interrupts held (`yolo_slim.cli.guard.run_command`'s `preload`). Not onnxruntime: importing
it writes a `.ses` file into the temp folder, which a command that never runs it should not."""


def _fail(exc: YoloSlimError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def run_app(
    app: str,
    conf_dir: Path,
    argv: Sequence[str] | None = None,
    *,
    project_root: Path | None = None,
    relaunch: Sequence[str] | None = None,
    prog: str | None = None,
) -> None:
    """Run `app` on the command line `argv` (default: ``sys.argv[1:]``), as ``python <app>.py`` does.

    Args:
        app: one of `APPS`.
        conf_dir: the `conf/` folder to compose from (the checkout's, or the installed
            package's for `yolo-slim`).
        argv: the arguments after the script name.
        project_root: `paths.root_dir`, the default output root: the checkout
            (`conf_dir`'s parent, the default) for the scripts, the current directory
            for `yolo-slim`.
        relaunch: the command line that runs this app again (``sys.argv`` during the
            task, which Lightning's DDP launcher re-executes for the other ranks);
            default ``[sys.argv[0], *argv]``.
        prog: the command as the user typed it, for messages (default ``<app>.py``).
    """
    import hydra

    from yolo_slim.config.command import check_command
    from yolo_slim.config.location import set_locations

    conf_dir = Path(conf_dir).resolve()
    set_locations(conf_dir, project_root if project_root is not None else conf_dir.parent)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        checked = check_command(app, argv, conf_dir)
    except YoloSlimError as exc:
        _fail(exc)
    if checked.dry_run:
        cfg = checked.cfg
        if app == "pipeline":  # also composes and validates every stage's task config
            try:
                _pipeline(cfg)
            except YoloSlimError as exc:
                _fail(exc)
        print(f"dry run: {prog or app + '.py'} config is valid (data={cfg.get('data', '-')}, img_size={cfg.get('img_size', '-')}, device={cfg.get('device', '-')})")
        return
    command = list(relaunch) if relaunch is not None else [sys.argv[0], *argv]

    def task(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        from yolo_slim.cli.guard import error_exit, run_command
        from yolo_slim.io.run_dir import discard_unused_run_dir

        def fail(error: YoloSlimError) -> None:
            discard_unused_run_dir(Path(HydraConfig.get().runtime.output_dir), Path(cfg.paths.log_dir))
            error_exit(error)

        sys.argv = command
        # one line and exit 2 on a user error, 130/143/129 on Ctrl-C/SIGTERM/SIGHUP
        run_command(lambda: TASKS[app](cfg), app, on_error=fail, preload=NATIVE_MODULES.get(app, ()))

    sys.argv = [sys.argv[0], *argv]  # what hydra.main parses
    hydra.main(version_base="1.3", config_path=str(conf_dir), config_name=app)(task)()
