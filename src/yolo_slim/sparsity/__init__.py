"""yolo_slim.sparsity: the BatchNorm-gamma L1 penalty (a Lightning callback), its
schedules and scopes, and the statistics that tell whether sparsity worked."""

from __future__ import annotations

from yolo_slim.sparsity.callback import BNSparsity
from yolo_slim.sparsity.schedule import SparsitySchedule
from yolo_slim.sparsity.scope import SCOPES, select_bn_layers

__all__ = ["SCOPES", "BNSparsity", "SparsitySchedule", "select_bn_layers"]
