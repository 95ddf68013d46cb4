"""Measured and predicted latency of whole networks, side by side.

`network_latency({"original": model, "pruned": compact}, table)` exports every
network as the deployment does (ONNX, then `openvino.convert_model`, FP32), times
the compiled models round robin with the table's compile settings and returns, per
network, the measured median wall time of a batch-1 inference next to the table's
prediction. With `refresh=True` the table's entries for these networks and its
fixed costs are re-measured in the same interleaved session as the whole networks,
so a loaded machine slows both alike (what the prediction test does).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_slim.latency.predict import Prediction, predict_specs
from yolo_slim.latency.specs import layer_specs
from yolo_slim.latency.table import LatencyTable


@dataclass(frozen=True)
class NetworkLatency:
    """One network's batch-1 latency on the table's device.

    Attributes:
        measured_ms: median wall time of the exported network.
        prediction: the table's prediction.
    """

    measured_ms: float
    prediction: Prediction

    @property
    def predicted_ms(self) -> float:
        return self.prediction.total_ms

    @property
    def error(self) -> float:
        """predicted / measured - 1."""
        return self.predicted_ms / self.measured_ms - 1.0


def export_openvino(model: Any, folder: str | Path, hw: tuple[int, int]):
    """The `ov.Model` the deployment runs for a `Darknet` (eval mode, decoded output),
    through a torchscript ONNX export in `folder`."""
    from yolo_slim.export.onnx import export_onnx
    from yolo_slim.export.openvino import convert_onnx

    path = export_onnx(model.eval(), Path(folder) / "model.onnx", img_hw=hw, exporter="torchscript")
    return convert_onnx(path)


def network_latency(
    models: Mapping[str, Any],
    table: LatencyTable,
    *,
    hw: tuple[int, int] | None = None,
    runs: int = 30,
    refresh: bool = False,
) -> dict[str, NetworkLatency]:
    """Measure and predict the latency of each `Darknet` in `models`.

    Args:
        models: name -> network (its cfg's `[net]` size, or `hw`).
        table: the latency table (its settings compile the whole networks too).
        hw: input (height, width); default each network's `[net]` size.
        runs: timed inferences per network (and per spec when `refresh`).
        refresh: re-measure the table's entries and fixed costs in the same session.

    Raises:
        ExportError: a network cannot be exported.
        LatencyError: measuring failed or passed the table's time bound.
    """
    with tempfile.TemporaryDirectory(prefix="yolo_slim_latency_") as tmp:
        exported = {
            name: (m.cfg, export_openvino(m, Path(tmp) / name, hw or m.cfg.input_hw), hw or m.cfg.input_hw) for name, m in models.items()
        }
        return measure_networks(exported, table, runs=runs, refresh=refresh)


def measure_networks(
    exported: Mapping[str, tuple[Any, Any, tuple[int, int]]],
    table: LatencyTable,
    *,
    runs: int = 30,
    refresh: bool = False,
) -> dict[str, NetworkLatency]:
    """`network_latency` for networks exported already: name -> (cfg, `ov.Model` or IR
    path, input (height, width))."""
    specs = {name: layer_specs(cfg, hw) for name, (cfg, _, hw) in exported.items()}
    all_specs = [s for lst in specs.values() for _, s in lst]
    walls = table.measure(all_specs, refresh=refresh, fixed=refresh, wall={name: ir for name, (_, ir, _) in exported.items()}, runs=runs)
    return {name: NetworkLatency(walls[name] / 1000.0, predict_specs(specs[name], table)) for name in exported}
