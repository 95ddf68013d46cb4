"""What users look at to judge sparsity: |gamma| statistics and their plots.

`sparsity_summary(model, layer_ids)` answers "is it sparse enough yet?": the share
of |gamma| below 1e-2 and 1e-3, the mean |gamma|, the threshold ceiling (the
largest global percent that still leaves every layer one channel), and the BFLOPs
the channel pruner would leave at a few global percents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch

from yolo_slim.io.atomic import write_atomic


def gamma_vector(model, layer_ids: Sequence[int]) -> torch.Tensor:
    """All gammas of the given BN layers, concatenated: Tensor[sum of channels] (CPU)."""
    if not layer_ids:
        return torch.zeros(0)
    return torch.cat([model.layers[i].bn.weight.detach().float().cpu().flatten() for i in layer_ids])


def threshold_ceiling(model, layer_ids: Sequence[int]) -> float:
    """The largest global percent that still leaves every layer at least one channel.

    The smallest per-layer maximum |gamma| is the highest usable threshold; the
    ceiling is the fraction of all |gamma| strictly below it.
    """
    if not layer_ids:
        return 0.0
    highest = min(float(model.layers[i].bn.weight.detach().abs().max()) for i in layer_ids)
    gammas = gamma_vector(model, layer_ids).abs()
    return float((gammas < highest).float().mean())


def survivor_masks(model, layer_ids: Sequence[int], keep_percent: float) -> dict[int, torch.Tensor]:
    """Per layer, Bool[C]: the channels that survive a global cut at `keep_percent`."""
    gammas = gamma_vector(model, layer_ids).abs()
    if gammas.numel() == 0:
        return {}
    k = min(int(gammas.numel() * keep_percent), gammas.numel() - 1)
    threshold = torch.sort(gammas).values[k]
    return {i: (model.layers[i].bn.weight.detach().abs().cpu() >= threshold) for i in layer_ids}


@dataclass(frozen=True)
class SparsitySummary:
    """Sparsity figures of one model.

    Attributes:
        channels: number of gammas considered.
        frac_below_1e2, frac_below_1e3: share of |gamma| below 1e-2 and 1e-3.
        mean_abs: mean |gamma|.
        threshold_ceiling: see `threshold_ceiling`.
        bflops: the model's BFLOPs now.
        predicted_bflops: global percent -> BFLOPs after channel pruning at it.
    """

    channels: int
    frac_below_1e2: float
    frac_below_1e3: float
    mean_abs: float
    threshold_ceiling: float
    bflops: float
    predicted_bflops: Mapping[float, float] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """Flat metric names -> values, for loggers."""
        out = {
            "frac_below_1e-2": self.frac_below_1e2,
            "frac_below_1e-3": self.frac_below_1e3,
            "mean_abs_gamma": self.mean_abs,
            "threshold_ceiling": self.threshold_ceiling,
            "bflops": self.bflops,
        }
        out.update({f"bflops_at_{p:.2f}": v for p, v in self.predicted_bflops.items()})
        return out

    def format(self) -> str:
        """A short human-readable report."""
        lines = [
            f"BatchNorm gammas considered : {self.channels}",
            f"|gamma| < 1e-2              : {self.frac_below_1e2:.1%}",
            f"|gamma| < 1e-3              : {self.frac_below_1e3:.1%}",
            f"mean |gamma|                : {self.mean_abs:.4f}",
            f"threshold ceiling           : {self.threshold_ceiling:.3f}  (largest global_percent that keeps a channel in every layer)",
            f"BFLOPs now                  : {self.bflops:.3f}",
        ]
        for p, v in self.predicted_bflops.items():
            lines.append(f"BFLOPs after global {p:.2f}    : {v:.3f}  ({v / self.bflops:.1%} of now)" if self.bflops else "")
        return "\n".join(lines)


def predicted_bflops(model, percents: Sequence[float]) -> dict[float, float]:
    """BFLOPs of the compact model the channel pruner would build at each percent.

    Percents above the threshold ceiling are still predicted: the pruner then keeps
    each layer's floor (`layer_keep`) of strongest channels.
    """
    from yolo_slim.graph import build_graph
    from yolo_slim.metrics.cost import count_cost
    from yolo_slim.prune.plan import plan_channel_pruning
    from yolo_slim.prune.surgery import compact_cfg

    graph = build_graph(model.cfg)
    out: dict[float, float] = {}
    for percent in percents:
        plan = plan_channel_pruning(model, graph, global_percent=percent)
        out[float(percent)] = count_cost(compact_cfg(graph, plan)).bflops
    return out


def sparsity_summary(model, layer_ids: Sequence[int], percents: Sequence[float] = (0.5, 0.7, 0.9)) -> SparsitySummary:
    """All sparsity figures of `model` over the BN layers `layer_ids`."""
    from yolo_slim.metrics.cost import count_cost

    gammas = gamma_vector(model, layer_ids).abs()
    n = max(gammas.numel(), 1)
    return SparsitySummary(
        channels=int(gammas.numel()),
        frac_below_1e2=float((gammas < 1e-2).sum()) / n,
        frac_below_1e3=float((gammas < 1e-3).sum()) / n,
        mean_abs=float(gammas.mean()) if gammas.numel() else 0.0,
        threshold_ceiling=threshold_ceiling(model, layer_ids),
        bflops=count_cost(model.cfg).bflops,
        predicted_bflops=predicted_bflops(model, percents) if percents else {},
    )


def plot_gamma_histograms(series: Mapping[str, torch.Tensor], path: str | Path, bins: int = 100) -> Path:
    """Save side-by-side histograms of |gamma| (one panel per series) as a PNG.

    Args:
        series: title -> Tensor[N] of gammas.
        path: the PNG to write (atomically).
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = {k: v.detach().abs().float().cpu().numpy() for k, v in series.items()}
    top = max((float(v.max()) for v in values.values() if v.size), default=1.0) or 1.0
    fig, axes = plt.subplots(1, len(values), figsize=(5 * len(values), 3.6), squeeze=False, sharey=False)
    for ax, (title, v) in zip(axes[0], values.items()):
        ax.hist(v, bins=bins, range=(0.0, top), color="#3b6ea8")
        ax.set_title(f"{title}\n{(v < 1e-2).mean():.0%} of |gamma| < 0.01" if v.size else title, fontsize=10)
        ax.set_xlabel("|gamma|")
        ax.set_ylabel("channels")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())
