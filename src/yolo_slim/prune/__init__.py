"""yolo_slim.prune: importance -> plan (what to keep) -> surgery (new sections + weights).

- `importance`: per-channel scores (BN |gamma| by default), aggregated over coupled channels;
- `plan`: the frozen, JSON-serialisable `PrunePlan` and the channel / layer planners;
- `fold`: beta folding of cut channels' constant outputs into their consumers;
- `surgery`: `apply_plan` builds the compact cfg, weights and model;
- `mask`: the gamma-masked network (the compact one's reference, cheap to evaluate);
- `recalibrate`: BatchNorm statistics re-estimation after surgery.

The package is also the pruning task: ``yolo_slim.prune(cfg)`` runs `yolo_slim.api.prune`.
"""

from yolo_slim.api import callable_package

from yolo_slim.prune.importance import coupled_scores, get_importance, register_importance
from yolo_slim.prune.mask import mask_model
from yolo_slim.prune.plan import (
    PrunePlan,
    check_plan,
    load_plan,
    plan_channel_pruning,
    plan_layer_channel_pruning,
    plan_layer_pruning,
    save_plan,
)
from yolo_slim.prune.recalibrate import recalibrate_bn
from yolo_slim.prune.surgery import apply_plan, apply_plan_arrays

callable_package(__name__)

__all__ = [
    "PrunePlan",
    "apply_plan",
    "apply_plan_arrays",
    "check_plan",
    "coupled_scores",
    "get_importance",
    "load_plan",
    "mask_model",
    "plan_channel_pruning",
    "plan_layer_channel_pruning",
    "plan_layer_pruning",
    "recalibrate_bn",
    "register_importance",
    "save_plan",
]
