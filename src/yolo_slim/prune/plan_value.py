"""What a prune plan is: the frozen `PrunePlan` value, its JSON file and its check.

A plan names, in the ids of the cfg it was made for, the kept output channels of every
pruned conv and the residual units to remove (`RemovedUnit`). It is checked against the
channel graph (`check_plan`) before any surgery, so a plan file can be re-applied to the
same cfg with other weights, and a plan that would break coupling, unbalance a split
route or empty a layer is refused with one clear message. The planners that make plans
live in `yolo_slim.prune.plan` (gamma-ranked) and `yolo_slim.prune.latency_plan`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolo_slim.darknet.cfg import DarknetCfg
from yolo_slim.darknet.sections import ConvSection, section_name
from yolo_slim.errors import PruneError
from yolo_slim.graph import ChannelGraph
from yolo_slim.io.atomic import write_atomic

PLAN_VERSION = 1


class RemovedUnit(tuple):
    """A residual unit a plan removes, by the layer ids it occupies: its convs, then its shortcut.

    A tuple of the ids (so it compares, sorts, hashes and serialises as the id list
    `plan.json` holds, ``[2, 3, 4]``) read by name: `convs`, `shortcut`, `layers`.
    `ChannelGraph.unit_of(unit.layers)` gives the graph's `ResidualUnit`.
    """

    __slots__ = ()

    def __new__(cls, layers: Iterable[int]) -> "RemovedUnit":
        return super().__new__(cls, (int(i) for i in layers))

    @property
    def layers(self) -> tuple[int, ...]:
        """Every layer id of the unit, ascending (convs then shortcut)."""
        return tuple(self)

    @property
    def convs(self) -> tuple[int, ...]:
        """The conv layer ids of the unit's chain."""
        return self.layers[:-1]

    @property
    def shortcut(self) -> int:
        """The shortcut layer id closing the unit."""
        return self.layers[-1]


@dataclass(frozen=True)
class PrunePlan:
    """What to cut, in the layer ids of the cfg the plan was made for.

    Attributes:
        kept: conv layer id -> ascending kept output channel indices; convs not listed
            keep every channel.
        removed_units: residual units to remove (`RemovedUnit`: the layer ids, convs
            then shortcut), in layer order; given as plain id tuples they become
            `RemovedUnit`s.
        fingerprint: `cfg_fingerprint` of the cfg the plan belongs to.
        global_percent: the requested percent: with `cut_by="threshold"` the quantile
            of the prunable channel scores that is the threshold, with `"quota"` the
            fraction of prunable conv channels to cut; None for layer-only plans.
        layer_keep: minimum kept fraction per conv, or None.
        channel_multiple: kept counts rounded up to a multiple of this.
        threshold: `"threshold"`: the global threshold (coupled channels whose
            aggregated score is <= it were cut, before channels were added back);
            `"quota"`: the largest aggregated score cut; None when nothing was cut.
        importance, aggregate: how channels were ranked.
        shortcuts: number of residual units requested.
        cut_by: what `global_percent` meant: "threshold" or "quota".
        achieved_percent: the fraction of prunable conv channels (each conv's channels
            counted) the plan actually cuts, after channels were added back.
        latency_budget: the latency planner's target as a fraction of the unpruned
            network's predicted latency, or None.
        latency_budget_ms: the latency planner's target in milliseconds, or None.
        latency_ms: the latency the plan was predicted to reach (milliseconds), or None.
    """

    kept: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    removed_units: tuple[RemovedUnit, ...] = ()
    fingerprint: str = ""
    global_percent: float | None = None
    layer_keep: float | None = None
    channel_multiple: int = 1
    threshold: float | None = None
    importance: str | None = None
    aggregate: str | None = None
    shortcuts: int = 0
    cut_by: str | None = None
    achieved_percent: float | None = None
    latency_budget: float | None = None
    latency_budget_ms: float | None = None
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "removed_units", tuple(RemovedUnit(u) for u in self.removed_units))

    @property
    def removed_layers(self) -> frozenset[int]:
        """Every layer id of the removed units."""
        return frozenset(i for unit in self.removed_units for i in unit.layers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (conv ids become string keys)."""
        d = dataclasses.asdict(self)
        d["kept"] = {str(k): list(v) for k, v in sorted(self.kept.items())}
        d["removed_units"] = [list(u.layers) for u in self.removed_units]
        return {"version": PLAN_VERSION, **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<plan>") -> "PrunePlan":
        """Inverse of `to_dict`.

        Raises:
            PruneError: wrong version, unknown keys or malformed values.
        """
        if not isinstance(data, Mapping):
            raise PruneError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", None)
        if version != PLAN_VERSION:
            raise PruneError(f"{source}: plan version {version!r}; expected {PLAN_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PruneError(f"{source}: unknown plan keys {unknown}; expected {sorted(names)}")
        try:
            kept = {int(k): tuple(int(c) for c in v) for k, v in dict(data.get("kept", {})).items()}
            units = tuple(RemovedUnit(u) for u in data.get("removed_units", ()))
        except (TypeError, ValueError) as exc:
            raise PruneError(f"{source}: malformed kept/removed_units: {exc}") from None
        data.update(kept=kept, removed_units=units)
        return cls(**data)


def save_plan(plan: PrunePlan, path: str | os.PathLike) -> Path:
    """Write `plan` as JSON, atomically."""
    return write_atomic(path, json.dumps(plan.to_dict(), indent=1) + "\n")


def load_plan(path: str | os.PathLike) -> PrunePlan:
    """Read a plan written by `save_plan`.

    Raises:
        PruneError: unreadable or malformed file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PruneError(f"{path}: cannot read plan: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise PruneError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return PrunePlan.from_dict(data, str(path))


def cfg_fingerprint(cfg: DarknetCfg) -> str:
    """A hash of the architecture (layer types, sizes, references; not the input size
    nor training-only keys), so a plan is only applied to the network it was made for."""
    parts = []
    skip = {"extra", "line", "relative"}
    for s in cfg.layers:
        fields = [(f.name, getattr(s, f.name)) for f in dataclasses.fields(s) if f.name not in skip]
        parts.append(f"{section_name(s)}{fields}")
    parts.append(f"channels={cfg.net.channels}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- checking


def check_plan(graph: ChannelGraph, plan: PrunePlan) -> np.ndarray:
    """Validate `plan` against `graph`; return which coupled channels it keeps.

    Returns:
        Bool[graph.num_coupled].

    Raises:
        PruneError: every problem found: other cfg, unknown layers, bad indices,
            coupled channels cut in one member and kept in another, unprunable channels
            cut, unbalanced split routes, emptied layers, units that are not removable.
    """
    cfg = graph.cfg
    problems: list[str] = []
    if plan.fingerprint and plan.fingerprint != cfg_fingerprint(cfg):
        raise PruneError(f"the plan was made for another network (fingerprint {plan.fingerprint}, {cfg.source} has {cfg_fingerprint(cfg)})")
    keep_votes = np.zeros(graph.num_coupled, dtype=np.int64)
    cut_votes = np.zeros(graph.num_coupled, dtype=np.int64)
    for layer, kept in sorted(plan.kept.items()):
        if not (0 <= layer < len(cfg.layers)) or not isinstance(cfg.layers[layer], ConvSection):
            problems.append(f"layer {layer} is not a conv layer of {cfg.source}")
            continue
        filters = cfg.layers[layer].filters
        idx = np.asarray(kept, dtype=np.int64)
        if idx.size == 0:
            problems.append(f"conv {layer}: the plan keeps no channel (a layer cannot be emptied)")
            continue
        if idx.min() < 0 or idx.max() >= filters or np.any(np.diff(idx) <= 0):
            problems.append(f"conv {layer}: kept indices must be ascending, unique and within 0..{filters - 1}")
            continue
        mask = np.zeros(filters, dtype=bool)
        mask[idx] = True
        ids = graph.positions[layer]
        np.add.at(keep_votes, ids[mask], 1)
        np.add.at(cut_votes, ids[~mask], 1)
    conflict = np.flatnonzero((keep_votes > 0) & (cut_votes > 0))
    unlisted_cut = set()
    for layer, start in graph.conv_nodes.items():
        if layer not in plan.kept:  # keeps everything
            ids = graph.positions[layer]
            unlisted_cut.update(int(c) for c in ids[cut_votes[ids] > 0])
    bad = sorted(set(conflict.tolist()) | unlisted_cut)
    if bad:
        examples = "; ".join(", ".join(f"conv {layer}[{ch}]" for layer, ch in graph.members_of(c)) for c in bad[:3])
        problems.append(f"{len(bad)} coupled channels are cut in some member convs but kept in others (e.g. {examples}); coupled channels must be cut together")
    keep = cut_votes == 0
    forbidden = np.flatnonzero(~keep & ~graph.prunable)
    if forbidden.size:
        layers = sorted({graph.node_layer[n] for n in np.flatnonzero(np.isin(graph.node_coupled, forbidden))})
        problems.append(f"the plan cuts channels that may not be cut, in conv {', '.join(map(str, layers))} (see `python -m yolo_slim graph`)")
    for blocks, route in zip(graph.balance, graph.balance_route):
        counts = [int(keep[b].sum()) for b in blocks]
        if len(set(counts)) > 1:
            problems.append(f"split route {route}: kept counts per block {counts} differ; each block must keep the same number")
    units = {u.layers for u in graph.units}
    for unit in plan.removed_units:
        if unit.layers not in units:
            problems.append(f"layers {list(unit.layers)} are not a removable residual unit of {cfg.source}")
    if len(set(plan.removed_units)) != len(plan.removed_units):
        problems.append("a residual unit is listed twice")
    if problems:
        raise PruneError("invalid prune plan:\n  " + "\n  ".join(problems) if len(problems) > 1 else f"invalid prune plan: {problems[0]}")
    return keep


def plan_from_keep(graph: ChannelGraph, keep: np.ndarray, **meta: Any) -> PrunePlan:
    """A plan keeping exactly the coupled channels where `keep` is True."""
    kept: dict[int, tuple[int, ...]] = {}
    for layer in graph.conv_nodes:
        k = keep[graph.positions[layer]]
        if not k.all():
            kept[layer] = tuple(int(i) for i in np.flatnonzero(k))
    return PrunePlan(kept=kept, fingerprint=cfg_fingerprint(graph.cfg), **meta)
