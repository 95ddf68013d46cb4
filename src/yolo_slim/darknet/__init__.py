"""yolo_slim.darknet: darknet text and bytes only (no nn.Module).

cfg parse (`parser`), validate (`validate`), write (`writer`) and edit (`edit`),
`load_cfg` (`cfg`), `.weights` read/write, shapes, and the model zoo.
"""

from __future__ import annotations

from yolo_slim.darknet.cfg import DarknetCfg, load_cfg, parse_cfg, parse_cfg_text, write_cfg, write_cfg_text
from yolo_slim.darknet.shapes import Shape, infer_shapes
from yolo_slim.darknet.weights import WeightsHeader, read_darknet_weights, write_darknet_weights

__all__ = [
    "DarknetCfg",
    "Shape",
    "WeightsHeader",
    "infer_shapes",
    "load_cfg",
    "parse_cfg",
    "parse_cfg_text",
    "read_darknet_weights",
    "write_cfg",
    "write_cfg_text",
    "write_darknet_weights",
]
