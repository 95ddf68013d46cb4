"""yolo_slim.ops: pure tensor functions (boxes, IoU, the YOLO decode, letterbox, NMS)."""

from __future__ import annotations

from yolo_slim.ops.boxes import bbox_iou, box_area, box_iou, xywh_to_xyxy, xyxy_to_xywh
from yolo_slim.ops.decode import decode_cell_boxes, decode_head
from yolo_slim.ops.letterbox import LetterboxInfo, boxes_to_original, letterbox
from yolo_slim.ops.nms import nms_numpy, non_max_suppression

__all__ = [
    "LetterboxInfo",
    "bbox_iou",
    "box_area",
    "box_iou",
    "decode_cell_boxes",
    "decode_head",
    "boxes_to_original",
    "letterbox",
    "nms_numpy",
    "non_max_suppression",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]
