"""The masked network: a plan applied by zeroing gammas, without surgery.

Zeroing the BatchNorm gamma of every cut channel (and of the last conv of every
removed residual unit) makes those channels output the constant `act(beta)`; that is
the network the compact one reproduces after beta folding (exactly, away from the
zero-padded borders of k > 1 consumers). It is cheap to build and to evaluate, so
searches over pruning strengths run on it.

With `silence=True` beta is also set so that the channel outputs exactly 0 (beta = 0,
or a large negative beta for `logistic`, whose act(0) is 0.5): then removing the
channel changes nothing anywhere, which is how exactness is tested.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from yolo_slim.graph import ChannelGraph, build_graph
from yolo_slim.prune.plan_value import PrunePlan, check_plan

SILENT_LOGISTIC_BETA = -1.0e4  # sigmoid(-1e4) == 0 exactly in float32 and float64


def silent_beta(activation: str) -> float:
    """A beta whose activation is exactly 0."""
    return SILENT_LOGISTIC_BETA if activation == "logistic" else 0.0


def mask_model(
    model: "Darknet", plan: PrunePlan, *, graph: ChannelGraph | None = None, silence: bool = False, inplace: bool = False  # noqa: F821
) -> "Darknet":  # noqa: F821
    """`model` with the plan's cut channels masked (gamma = 0).

    Args:
        model: the original network.
        plan: what to cut.
        graph: the model's channel graph (built when None).
        silence: also set beta so the masked channels output exactly 0.
        inplace: modify and return `model` itself instead of a copy.

    Raises:
        PruneError: the plan does not fit the model's cfg.
    """
    graph = graph if graph is not None else build_graph(model.cfg)
    keep = check_plan(graph, plan)
    masked = model if inplace else copy.deepcopy(model)
    blocks = masked.conv_blocks()
    targets: dict[int, np.ndarray] = {}
    for layer in blocks:
        cut = ~keep[graph.positions[layer]]
        if cut.any():
            targets[layer] = cut
    for unit in plan.removed_units:
        last = graph.unit_of(unit.layers).last_conv
        targets[last] = np.ones(graph.shapes[last].c, dtype=bool)
    with torch.no_grad():
        for layer, cut in targets.items():
            block = blocks[layer]
            idx = torch.from_numpy(np.flatnonzero(cut))
            section = model.cfg.layers[layer]
            if block.bn is not None:
                block.bn.weight[idx] = 0.0
                if silence:
                    block.bn.bias[idx] = silent_beta(section.activation)
            else:
                block.conv.weight[idx] = 0.0
                if silence:
                    block.conv.bias[idx] = silent_beta(section.activation)
    return masked
