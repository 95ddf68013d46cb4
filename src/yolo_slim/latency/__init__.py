"""yolo_slim.latency: a latency model of the deployment device.

- `specs`: the shape of each timed op of a darknet network (`layer_specs`), the
  table's keys;
- `micro`: single-layer OpenVINO models built with the opset API;
- `measure`: compile settings (`DeviceSettings`) and interleaved wall-clock timing;
- `table`: `LatencyTable`, per-layer latencies measured once per device and cached;
- `grid`: `GridCost`, costs at any channel count from measured grid points;
- `predict`: `predict_latency`, the whole network's latency from the table;
- `network`: `network_latency`, measured and predicted latency of exported networks.

See docs/latency.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yolo_slim.config.devices import normalise_device, openvino_device
from yolo_slim.latency.grid import GridCost, axis_grid
from yolo_slim.latency.measure import DeviceSettings, deployed_precision
from yolo_slim.latency.network import NetworkLatency, network_latency
from yolo_slim.latency.predict import Prediction, predict_latency
from yolo_slim.latency.specs import layer_specs, spec_key
from yolo_slim.latency.table import FixedCost, LatencySource, LatencyTable, default_cache_dir


def table_from_config(node: Mapping[str, Any]) -> LatencyTable:
    """The latency table a `prune.latency` config node describes (`device`: auto | cpu |
    gpu as every app's `device=`, `threads`, `precision` (auto: `deployed_precision`), `cache_dir`, `runs`,
    `max_measure_s`; other keys are ignored; `conf/prune/channel.yaml` holds the defaults).

    Raises:
        ConfigError: a device other than auto, cpu or gpu.
        LatencyError: a device OpenVINO does not see, or bad values.
    """
    device = openvino_device(normalise_device(node["device"], "prune.latency.device"))
    precision = str(node["precision"])
    settings = DeviceSettings(
        device=device,
        threads=None if node["threads"] is None else int(node["threads"]),
        precision=deployed_precision(device) if precision == "auto" else precision,
    )
    return LatencyTable(settings, node["cache_dir"], runs=int(node["runs"]), max_seconds=float(node["max_measure_s"]))


__all__ = [
    "DeviceSettings",
    "FixedCost",
    "GridCost",
    "LatencySource",
    "LatencyTable",
    "NetworkLatency",
    "Prediction",
    "axis_grid",
    "default_cache_dir",
    "deployed_precision",
    "layer_specs",
    "network_latency",
    "predict_latency",
    "spec_key",
    "table_from_config",
]
