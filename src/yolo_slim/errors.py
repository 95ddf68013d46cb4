"""The one error hierarchy of yolo_slim.

Every error a user can cause (a bad file, a bad option, a bad request) is a
`YoloSlimError`. Entry points print its message, one clear paragraph, and exit
non-zero instead of showing a traceback.
"""

from __future__ import annotations


class YoloSlimError(Exception):
    """Base class of all user-facing errors."""


class CfgError(YoloSlimError):
    """A darknet .cfg file (or a section built in code) is invalid."""


class WeightsError(YoloSlimError):
    """A darknet .weights file or a checkpoint does not fit the model."""


class DataError(YoloSlimError):
    """A dataset, .data file, image or label file is invalid."""


class PruneError(YoloSlimError):
    """A pruning request cannot be carried out."""


class ExportError(YoloSlimError):
    """A model cannot be exported or an exported model is unusable."""


class DeployError(YoloSlimError):
    """A deployment artefact (IR, meta.json) or a video source is unusable."""


class LatencyError(YoloSlimError):
    """Latency cannot be measured or predicted (device, table, time bound)."""


class ConfigError(YoloSlimError):
    """A Hydra or callback option has a value outside what is allowed."""


class TrainingError(YoloSlimError):
    """Training cannot go on: the loss became NaN or infinite."""


class PipelineError(YoloSlimError):
    """A stage of `pipeline.py` failed; the message names the stage and its log."""
