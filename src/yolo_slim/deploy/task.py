"""`detect(cfg)`: run an exported IR over video files, image folders, cameras or URLs.

Writes, per stream, an annotated video (`<stream>.avi`) or frames (`<stream>/`), and
optionally `detections.jsonl`, into the output folder, drawing and writing in a
thread per stream (`AsyncWriter`); returns the run's metrics (per-stream and total
FPS) and artifact paths. Streams that fail are reported and do not stop the others.
The config is validated first (`yolo_slim.config.validate_config`): `weights=` is
the IR, or an export folder, whose precision recorded fastest on this device is run
(`yolo_slim.deploy.select`); `device=auto|cpu|gpu` the OpenVINO device, the output
folder `paths.output_dir` (the run dir).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from yolo_slim.config import validate_config
from yolo_slim.config.devices import openvino_device
from yolo_slim.deploy.multistream import MODES, run_streams
from yolo_slim.deploy.select import select_ir
from yolo_slim.deploy.sources import FrameSource, open_source
from yolo_slim.deploy.writers import AsyncWriter, FrameSink, JsonlWriter, VideoSink, draw_detections
from yolo_slim.errors import ConfigError, DeployError
from yolo_slim.export.meta import META_NAME, read_meta
from yolo_slim.io.finite import check_ir_file

log = logging.getLogger(__name__)


def _output_dir(cfg: DictConfig) -> Path:
    """The run dir, ``cfg.paths.output_dir`` (by default Hydra's runtime output dir)."""
    try:
        return Path(str(cfg.paths.output_dir))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"paths.output_dir cannot be resolved outside a Hydra run; set it ({exc})") from None


def detect(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Path]]:
    """Detect over `cfg.source` with the IR `cfg.weights` (a model.xml or an export folder) in `cfg.mode`.

    Returns:
        `(metrics, artifacts)`: `detect/fps`, `detect/<stream>/fps`, frame counts,
        `detect/failed` (number of failed streams); the written files.

    Raises:
        ConfigError: bad options. DeployError: the IR/meta is unusable or no source opens.
    """
    cfg = validate_config(cfg, "detect")
    mode = str(cfg.mode)
    if mode not in MODES:
        raise ConfigError(f"detect: mode must be one of {list(MODES)}, got {mode!r}")
    for key in ("preprocess", "nms"):
        if (value := cfg[key]) not in ("host", "graph"):
            raise ConfigError(f"detect: {key} must be 'host' or 'graph', got {value!r}")
    if cfg.requests is not None and int(cfg.requests) < 1:
        raise ConfigError(f"detect: requests must be >= 1 or null (the device's optimal number), got {cfg.requests}")
    specs = list(cfg.source) if isinstance(cfg.source, (list, ListConfig)) else [cfg.source]
    if not specs:
        raise ConfigError("detect: source is empty")
    device = openvino_device(cfg.device)
    chosen = select_ir(Path(str(cfg.weights)), device, "latency" if str(cfg.hint) == "latency" else "throughput")
    for line in chosen.info:
        log.info("%s", line)
    for line in chosen.warnings:
        log.warning("%s", line)
    xml = chosen.xml
    names = read_meta(xml.parent / META_NAME)["names"]
    check_ir_file(xml)  # a corrupt or NaN IR fails here, before any output file is opened
    out = _output_dir(cfg)
    sources: list[FrameSource | DeployError] = []
    for i, spec in enumerate(specs):
        try:
            sources.append(open_source(spec, i))
        except DeployError as err:
            log.error("stream %d (%s) failed to open: %s", i, spec, err)
            sources.append(err)
    o = cfg.output
    sinks: dict[int, VideoSink | FrameSink] = {}
    for i, src in enumerate(sources):
        if isinstance(src, FrameSource):
            if o.frames:
                sinks[i] = FrameSink(out / src.name)
            elif o.video:
                sinks[i] = VideoSink(out / f"{src.name}{o.video_suffix}", src.fps)
    jsonl = JsonlWriter(out / "detections.jsonl") if o.jsonl else None
    stream_names = [s.name if isinstance(s, FrameSource) else f"{i}_failed" for i, s in enumerate(sources)]

    def write(stream: int, index: int, frame, dets) -> None:
        if stream in sinks:
            sinks[stream].write(draw_detections(frame, dets, names))
        if jsonl is not None:
            jsonl.write(stream_names[stream], index, dets)

    writer = AsyncWriter(write, len(sources))
    try:
        report = run_streams(
            str(xml), sources, mode, on_result=writer, max_frames=OmegaConf.select(cfg, "max_frames"),
            log_every=float(cfg.log_every), progress=bool(cfg.progress), names=stream_names, requests=cfg.requests,
            device=device, hint=str(cfg.hint), conf_thres=float(cfg.conf_thres), iou_thres=float(cfg.iou_thres),
            preprocess=str(cfg.preprocess), nms=str(cfg.nms),
        )
    finally:
        write_errors = writer.close()
        for sink in sinks.values():
            sink.close()
        if jsonl is not None:
            jsonl.close()
        for src in sources:
            if isinstance(src, FrameSource):
                src.close()
    for i, message in write_errors.items():  # failed after its last frame was handed over
        if report.streams[i].error is None:
            report.streams[i].error = message
    report.failed = [s.name for s in report.streams if s.error]
    metrics = {"detect/fps": report.fps, "detect/frames": float(report.frames), "detect/seconds": report.seconds,
               "detect/cpu_ms_per_frame": 1000 * report.cpu_seconds / max(report.frames, 1), "detect/failed": float(len(report.failed))}
    for s in report.streams:
        metrics[f"detect/{s.name}/fps"] = s.fps
        metrics[f"detect/{s.name}/frames"] = float(s.frames)
    for s in report.streams:
        if s.error:
            log.error("stream %s failed after %d frames: %s", s.name, s.frames, s.error)
    artifacts: dict[str, Path] = {f"stream_{i}": (s.path if isinstance(s, VideoSink) else s.folder) for i, s in sinks.items()}
    if jsonl is not None:
        artifacts["jsonl"] = jsonl.path
    log.info("%d frames in %.1f s (%.1f FPS total, mode %s); failed: %s", report.frames, report.seconds, report.fps, mode, report.failed or "none")
    return metrics, artifacts
