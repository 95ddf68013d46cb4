"""`img_size=`: the one input size, and the model's own size when it is not given.

A model's own size is its cfg's `[net]` width/height. A checkpoint carries its cfg
text, whose `[net]` size is the size it was trained at. Every place where a model
meets images (the loader, training, prune's evaluation, export's IR, INT8 calibration
and mAP, the pipeline's benchmark) takes its size from `resolve_img_size`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg, parse_cfg_text
from yolo_slim.darknet.shapes import check_input_size
from yolo_slim.errors import ConfigError

@dataclass(frozen=True)
class SizeSource:
    """One place a model's size comes from.

    Attributes:
        hw: `[net]` height and width in pixels.
        origin: where it comes from, for messages (``the [net] size of yolov4-tiny``).
    """

    hw: tuple[int, int]
    origin: str

    @property
    def size(self) -> int:
        """The square side.

        Raises:
            ConfigError: the `[net]` size is not square (give img_size=N).
        """
        height, width = self.hw
        if height != width:
            raise ConfigError(f"{self.origin} is {width}x{height}, not square; give img_size=N (the loader letterboxes to N x N)")
        return int(height)


def is_checkpoint(weights: object) -> bool:
    """Whether `weights` names a Lightning checkpoint (``.ckpt``)."""
    return weights is not None and Path(str(weights)).suffix == ".ckpt"


def is_openvino_ir(weights: object) -> bool:
    """Whether `weights` names an OpenVINO IR (``model.xml``, its ``meta.json`` beside it)."""
    return weights is not None and Path(str(weights)).suffix == ".xml"


def checkpoint_cfg(path: str | Path) -> DarknetCfg | None:
    """The darknet cfg a yolo_slim checkpoint carries (None when it carries none).

    Raises:
        WeightsError: the checkpoint is missing or unreadable.
    """
    from yolo_slim.io.checkpoint import CFG_KEY, read_checkpoint

    text = read_checkpoint(path).get(CFG_KEY)
    return parse_cfg_text(text, f"{path} (checkpoint cfg)") if text else None


def net_size(cfg: DarknetCfg, origin: str) -> SizeSource:
    """The `[net]` size of `cfg` as a `SizeSource`."""
    return SizeSource((int(cfg.input_hw[0]), int(cfg.input_hw[1])), origin)


def check_multiple(size: int, cfg: DarknetCfg, key: str = "img_size") -> int:
    """`size` if it is a valid input size of `cfg`: the one rule of every app,
    `yolo_slim.darknet.shapes.check_input_size` (a multiple of the largest stride, in bounds).

    Raises:
        CfgError: it is not (the message names `key`, the stride and a valid size).
    """
    check_input_size(cfg, size, key)
    return size


def model_sources(model_cfg: str | None, weights: str | None) -> tuple[DarknetCfg, list[SizeSource]]:
    """The architecture to size-check against and every size the model files state.

    Args:
        model_cfg: `model.cfg` (zoo name or `.cfg`), or None.
        weights: `weights`; a `.ckpt` adds the size it was trained at.

    Raises:
        ConfigError: neither a cfg nor a checkpoint carrying one.
    """
    sources: list[SizeSource] = []
    arch = None
    if model_cfg:
        arch = load_cfg(str(model_cfg))
        sources.append(net_size(arch, f"the [net] size of {model_cfg}"))
    if is_checkpoint(weights):
        trained = checkpoint_cfg(str(weights))
        if trained is not None:
            arch = arch if arch is not None else trained
            sources.append(net_size(trained, f"the size {weights} was trained at"))
    if arch is None:
        raise ConfigError("no model: give model.cfg=NAME_OR_PATH (a zoo name or .cfg file) or weights=PATH.ckpt (it carries its cfg)")
    return arch, sources


def resolve_img_size(img_size: int | None, model_cfg: str | None, weights: str | None = None, resume: str | None = None) -> int:
    """The input size of a run: `img_size` when given, else the model's own size.

    Args:
        img_size: the `img_size=` value (None: not given).
        model_cfg, weights: the model (see `model_sources`).
        resume: a checkpoint the run resumes from; its size is kept.

    Raises:
        CfgError: the given (or the model's own) size is not a valid input size.
        ConfigError: the given size differs from a resumed run's size, or (no size given) the model files
            state two different sizes; each message names both values.
    """
    if resume is not None:
        trained = checkpoint_cfg(resume)
        if trained is not None:
            kept = net_size(trained, f"the size {resume} was trained at")
            if img_size is not None and int(img_size) != kept.size:
                raise ConfigError(f"img_size={img_size} but {kept.origin} is {kept.size}; a resumed run keeps its size (drop img_size)")
            return kept.size
    arch, sources = model_sources(model_cfg, weights)
    if img_size is not None:
        return check_multiple(int(img_size), arch)
    sizes = {s.size for s in sources}
    if len(sizes) > 1:
        a, b = sources[0], next(s for s in sources if s.size != sources[0].size)
        raise ConfigError(f"{a.origin} is {a.size} but {b.origin} is {b.size}; give img_size=N to choose")
    return check_multiple(sources[0].size, arch, key=f"the model's own size ({sources[0].origin})")
