"""Which IR to run: the fastest precision export measured on this device, or a warning.

`export.py` times the IRs it writes (`yolo_slim.export.precision`) and records the
result in each `meta.json` (`speed`). Given an export folder, `select_ir` runs the
precision recorded fastest for the run's measure (throughput or batch-1 latency);
given one `model.xml` it runs that one, with a warning when the record says another
precision is faster here, and why. A record made on another device is not trusted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from yolo_slim.errors import DeployError, ExportError
from yolo_slim.export.meta import META_NAME, read_meta
from yolo_slim.export.precision import Metric, PrecisionReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """The IR to run and what the user should know about the choice.

    Attributes:
        xml: the `model.xml` to run.
        precision: its precision (from its meta.json).
        warnings: sentences to log as warnings (a slower precision asked for, an
            unusable record).
        info: sentences to log as information (why this IR was picked).
    """

    xml: Path
    precision: str
    warnings: tuple[str, ...] = ()
    info: tuple[str, ...] = ()


def device_name(device: str) -> str | None:
    """The device's full name as OpenVINO reports it, or None if it has none (AUTO, MULTI)."""
    from yolo_slim.openvino_core import full_device_name

    return full_device_name(device)


def _record(meta: dict, meta_path: Path) -> PrecisionReport | None:
    speed = meta.get("speed")
    if speed is None:
        return None
    try:
        return PrecisionReport.from_dict(speed)
    except ExportError as err:
        raise DeployError(f"{meta_path}: {err}") from None


def select_ir(path: str | os.PathLike, device: str, metric: Metric, current_device_name: str | None = None) -> Selection:
    """Pick the IR to run from `path`: an export folder (the fastest recorded) or one `model.xml`.

    Args:
        path: an export folder (holding `model.xml`) or a `model.xml`.
        device: the OpenVINO device the run uses.
        metric: `throughput` (multi-stream runs) or `latency`.
        current_device_name: this device's full name; default asked from OpenVINO.

    Raises:
        DeployError: no `model.xml` in the folder, a missing or invalid meta.json
            or speed record, or a recorded IR that is missing.
    """
    path = Path(path)
    given = path / "model.xml" if path.is_dir() else path
    if path.is_dir() and not given.is_file():
        raise DeployError(f"{path}: export folder without model.xml (give the folder export.py wrote, or a model.xml)")
    meta_path = given.parent / META_NAME
    meta = read_meta(meta_path)
    report = _record(meta, meta_path)
    precision = str(meta["precision"])
    if report is None:
        return Selection(given, precision, info=(f"{meta_path}: no speed record (export.speed.measure=false or an older export)",))
    here = current_device_name if current_device_name is not None else device_name(device)
    if report.device.upper() != device.upper() or report.device_name != here:
        note = (f"{meta_path}: the speed record is from {report.device_name} ({report.device}), this run uses "
                f"{here or device} ({device}); re-export here to time the precisions on it")
        return Selection(given, precision, warnings=(note,) if path.is_dir() else (), info=() if path.is_dir() else (note,))
    best = report.fastest(metric)
    best_xml = (given.parent / report.timing(best).xml).resolve()
    if not best_xml.is_file():
        raise DeployError(f"{meta_path}: the speed record names {best_xml}, which is missing")
    figure = (lambda t: f"{t.latency_ms:.2f} ms batch-1") if metric == "latency" else (lambda t: f"{t.throughput_fps:.1f} FPS")
    timings = ", ".join(f"{t.precision.upper()} {figure(t)}" for t in report.timings)
    if path.is_dir():
        return Selection(best_xml, best, info=(f"{path}: running the {best.upper()} IR {best_xml}, the fastest for {metric} "
                                               f"measured at export on this device ({timings})",))
    if best == precision:
        return Selection(given, precision)
    warning = (f"{given} is the {precision.upper()} IR, but on this device the {best.upper()} IR ({best_xml}) measured "
               f"faster for {metric} at export ({timings}); run that one, or give the export folder to pick it")
    return Selection(given, precision, warnings=(warning, *report.notes))
