"""Run the pipeline's stages in order, resumably.

Each stage writes `NN_name/stage.json` when it has finished; a rerun of the same
command skips those stages and continues with the first unfinished one (a training
stage interrupted mid-way resumes from its `last.ckpt`, a sweep keeps its finished
jobs). Everything a stage prints also goes to its `stage.log`. A failing stage stops
the pipeline with one message naming the stage and its log; `REPORT.md` is rewritten
after every stage from what has been measured so far.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig

from yolo_slim.errors import PipelineError
from yolo_slim.pipeline.report import write_report
from yolo_slim.pipeline.stages import (
    RUNNERS, STAGES, StageContext, forced_stages, load_result, save_result, stage_list,
)

log = logging.getLogger(__name__)
RESULT_NAME = "stage.json"


class _Tee:
    """A text stream writing to two streams (the console and a log file)."""

    def __init__(self, first: TextIO, second: TextIO) -> None:
        self.first, self.second = first, second

    def write(self, text: str) -> int:
        self.second.write(text)
        return self.first.write(text)

    def flush(self) -> None:
        self.first.flush()
        self.second.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.first, name)


@contextlib.contextmanager
def _logged(path: Path) -> Iterator[TextIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        handler.setLevel(logging.INFO)
        root = logging.getLogger()
        old_level = root.level
        root.setLevel(min(old_level, logging.INFO) if old_level else logging.INFO)
        root.addHandler(handler)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(old_out, handle), _Tee(old_err, handle)
        try:
            yield handle
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()


def run_pipeline(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Run the configured stages (`cfg.stages`) into `cfg.paths.output_dir`.

    Returns:
        Every finished stage's result (this run's and earlier runs'), by stage name.

    Raises:
        PipelineError: a stage failed (the message names the stage and its log), or
            the stage list is invalid.
    """
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        # called as a function (tests, notebooks): the stages compose from the project's conf/
        from hydra import initialize_config_dir

        with initialize_config_dir(config_dir=str(Path(str(cfg.paths.root_dir)) / "conf"), version_base="1.3"):
            return run_pipeline(cfg)
    run_dir = Path(str(cfg.paths.output_dir))
    ctx = StageContext(cfg, run_dir)
    wanted = stage_list(cfg)
    stale = forced_stages(cfg)
    for name in STAGES:
        previous = load_result(ctx.stage_dir(name) / RESULT_NAME)
        if previous is not None and name not in stale:
            ctx.results[name] = previous
    print(f"pipeline: {run_dir}  stages: {', '.join(wanted)}", flush=True)
    for name in wanted:
        stage_dir = ctx.stage_dir(name)
        if name in ctx.results:
            print(f"pipeline: [{name}] already done ({ctx.results[name].get('seconds', 0):.0f} s), skipped", flush=True)
            continue
        if name in stale and stage_dir.exists():
            shutil.rmtree(stage_dir)  # forced: start over, not resume the old last.ckpt
        stage_log = stage_dir / "stage.log"
        print(f"pipeline: [{name}] starting; log: {stage_log}", flush=True)
        start = time.perf_counter()
        try:
            with _logged(stage_log) as handle:
                log.info("stage %s started in %s", name, stage_dir)
                try:
                    result = RUNNERS[name](ctx)
                except Exception:
                    handle.write(traceback.format_exc())
                    raise
        except Exception as exc:  # noqa: BLE001 - any failure becomes one message naming the stage
            message = str(exc).strip() or type(exc).__name__
            raise PipelineError(f"stage '{name}' failed: {message}\n  log: {stage_log}") from exc
        result["seconds"] = time.perf_counter() - start
        save_result(stage_dir / RESULT_NAME, result)
        ctx.results[name] = result
        write_report(ctx)
        print(f"pipeline: [{name}] done in {result['seconds']:.0f} s", flush=True)
    report = write_report(ctx)
    print(f"pipeline: report {report}", flush=True)
    return ctx.results
