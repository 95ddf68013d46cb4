"""`detect(cfg)`: run an exported IR over video files, image folders, cameras or URLs.

Writes, per stream, an annotated video (`<stream>.avi`) or frames (`<stream>/`), and
optionally `detections.jsonl`, into the output folder; returns the run's metrics
(per-stream and total FPS) and artifact paths. Streams that fail are reported and
do not stop the others. The config is validated first (`yolo_slim.config.validate_config`):
`weights=` is the IR, `device=auto|cpu|gpu` the OpenVINO device, the output folder
`paths.output_dir` (the run dir).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from yolo_slim.config import validate_config
from yolo_slim.config.devices import openvino_device
from yolo_slim.deploy.multistream import MODES, run_streams
from yolo_slim.deploy.sources import FrameSource, open_source
from yolo_slim.deploy.writers import FrameSink, JsonlWriter, VideoSink, draw_detections
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
    """Detect over `cfg.source` with the IR `cfg.weights` (a model.xml) in `cfg.mode`.

    Returns:
        `(metrics, artifacts)`: `detect/fps`, `detect/<stream>/fps`, frame counts,
        `detect/failed` (number of failed streams); the written files.

    Raises:
        ConfigError: bad options. DeployError: the IR/meta is unusable or no source opens.
    """
    cfg = validate_config(cfg, "detect")
    xml = Path(str(cfg.weights))
    mode = str(cfg.mode)
    if mode not in MODES:
        raise ConfigError(f"detect: mode must be one of {list(MODES)}, got {mode!r}")
    specs = list(cfg.source) if isinstance(cfg.source, (list, ListConfig)) else [cfg.source]
    if not specs:
        raise ConfigError("detect: source is empty")
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

    def on_result(stream: int, index: int, frame, dets) -> None:
        if stream in sinks:
            sinks[stream].write(draw_detections(frame, dets, names))
        if jsonl is not None:
            jsonl.write(stream_names[stream], index, dets)

    try:
        report = run_streams(
            str(xml), sources, mode, on_result=on_result, max_frames=OmegaConf.select(cfg, "max_frames"),
            log_every=float(cfg.log_every), progress=bool(cfg.progress), names=stream_names, device=openvino_device(cfg.device),
            hint=str(cfg.hint), conf_thres=float(cfg.conf_thres), iou_thres=float(cfg.iou_thres),
        )
    finally:
        for sink in sinks.values():
            sink.close()
        if jsonl is not None:
            jsonl.close()
        for src in sources:
            if isinstance(src, FrameSource):
                src.close()
    metrics = {"detect/fps": report.fps, "detect/frames": float(report.frames), "detect/seconds": report.seconds, "detect/failed": float(len(report.failed))}
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
