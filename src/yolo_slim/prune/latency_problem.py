"""The latency planner's model of one network: the decisions, their costs and their worth.

`LatencyProblem` holds the coupled channel groups whose widths the planner sets (with
their candidate widths on the device's staircase and the importance a width keeps),
the removable residual units, and every timed op with the channel counts the widths
give it, priced by `GridCost`. Its `down` and `fill` steps move the widths and units
toward a latency target; `yolo_slim.prune.latency_plan.plan_latency_pruning` runs them,
checks the result exactly and turns it into a `PrunePlan` (the algorithm is described
there). About 400 lines because it is one class whose methods share one mutable state
(the widths, the removed units and the cached move costs); split, that state would be
read across modules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from yolo_slim.darknet.sections import RouteSection
from yolo_slim.errors import PruneError
from yolo_slim.graph import ChannelGraph
from yolo_slim.latency.grid import GridCost
from yolo_slim.latency.specs import ConvSpec, SliceSpec, Spec, layer_specs

LOOKAHEAD = 2
"""Candidate widths below (or above) the current one a move may jump to."""
MAX_CANDIDATES = 64
"""Most candidate widths per group (wider groups step in larger quantum multiples)."""


@dataclass
class _Group:
    """One coupled channel group the planner sets the width of."""

    index: int
    order: np.ndarray  # coupled ids: always-kept ones first, then by falling importance
    forced: int  # how many of `order` are always kept
    value: np.ndarray  # Float[C + 1]: kept importance of the first w of `order`
    candidates: tuple[int, ...]  # widths the down and fill steps choose from, ascending
    allowed: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=bool))  # Bool[C + 1]: balanced widths
    ops: tuple[int, ...] = ()  # ops whose cost depends on the width
    unit: int | None = None  # the residual unit the group is private to


@dataclass
class _Op:
    """One timed op: its full-width spec and which tensors its channel axes count."""

    layer: int
    base: Spec
    axes: tuple[tuple[str, int, int], ...]  # (axis name, tensor layer id, divisor)


def _rank_order(ids: np.ndarray, scores: np.ndarray, forced_mask: np.ndarray, blocks: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """A group's coupled ids in keeping order: forced first, then by falling score; ids in
    split blocks are taken round robin across the blocks so every prefix stays balanced."""
    forced = ids[forced_mask[ids]]
    free = ids[~forced_mask[ids]]
    key = -np.nan_to_num(scores[free], nan=-np.inf)
    free = free[np.argsort(key, kind="stable")]
    in_blocks = [np.intersect1d(b, free) for b in blocks]
    blocked = np.concatenate(in_blocks) if in_blocks else np.zeros(0, dtype=np.int64)
    if blocked.size:
        per_block = [free[np.isin(free, b)] for b in in_blocks]
        rounds = []
        for r in range(max(len(b) for b in per_block)):
            layer = [b[r] for b in per_block if r < len(b)]
            layer.sort(key=lambda c: -np.nan_to_num(scores[c], nan=-np.inf))
            rounds.extend(layer)
        rest = free[~np.isin(free, blocked)]
        free = np.concatenate([np.asarray(rounds, dtype=np.int64), rest])
    return np.concatenate([forced, free]).astype(np.int64), int(forced.size)


class LatencyProblem:
    """The widths, the ops' costs and the importance of one network (see `yolo_slim.prune.latency_plan`)."""

    def __init__(
        self,
        graph: ChannelGraph,
        scores: np.ndarray,
        conv_scores: Mapping[int, np.ndarray],
        grid: GridCost,
        hw: tuple[int, int],
        layer_keep: float,
        units: bool,
    ) -> None:
        self.graph, self.grid = graph, grid
        self.positions = {-1: graph.node_coupled[: graph.cfg.net.channels], **{i: p for i, p in enumerate(graph.positions)}}
        self.ops = self._timed_ops(hw)
        self._build_groups(scores)
        # per tensor an op counts: its constant part and (group, cumulative count) parts
        self.tensor_parts: dict[int, tuple[int, list[tuple[int, np.ndarray]]]] = {}
        for op in self.ops:
            for _, t, _ in op.axes:
                if t not in self.tensor_parts:
                    self.tensor_parts[t] = self._tensor_counts(self.positions[t])
        self._set_candidates(layer_keep, max(grid.quantum, 1))
        for i, op in enumerate(self.ops):
            for _, t, _ in op.axes:
                for gi, _ in self.tensor_parts[t][1]:
                    grp = self.groups[self.by_index[gi]]
                    if i not in grp.ops:
                        grp.ops = (*grp.ops, i)
        self._build_units(conv_scores, units)
        self.neighbours = {
            k: {self.by_index[gi] for i in g.ops for _, t, _ in self.ops[i].axes for gi, _ in self.tensor_parts[t][1]} for k, g in enumerate(self.groups)
        }
        # the state: every group at full width, no unit removed
        self.widths = [g.order.size for g in self.groups]
        self.removed: set[int] = set()
        self._cost_cache: dict[tuple[int, tuple[int, ...]], float] = {}
        self.grid.prefetch(self._query(i, {}) for i in range(len(self.ops)))
        self.costs = [self._op_cost(i, {}) for i in range(len(self.ops))]
        self.fixed_us = grid.table.fixed().inference_us

    def _timed_ops(self, hw: tuple[int, int]) -> list[_Op]:
        """The network's timed ops, each with the tensors its channel axes count."""
        cfg = self.graph.cfg
        ops: list[_Op] = []
        slices_seen: dict[int, int] = {}
        for layer, spec in layer_specs(cfg, hw):
            axes: tuple[tuple[str, int, int], ...] = ()
            if isinstance(spec, ConvSpec):
                axes = (("cout", layer, 1),) if spec.depthwise else (("cin", layer - 1, 1), ("cout", layer, 1))
            elif isinstance(spec, SliceSpec):
                k = slices_seen.get(layer, 0)
                slices_seen[layer] = k + 1
                route: RouteSection = cfg.layers[layer]  # type: ignore[assignment]  # slices come from routes
                axes = (("c", route.sources[k], 1),)
            elif spec.channel_axes():
                axes = (("c", layer, 1),)
            ops.append(_Op(layer, spec, axes))
        return ops

    def _build_groups(self, scores: np.ndarray) -> None:
        """One `_Group` per channel group with a channel that may be cut and is scored."""
        graph = self.graph
        forced_mask = ~graph.prunable | np.isnan(scores)
        value_of = np.where(forced_mask, 0.0, np.nan_to_num(scores, nan=0.0))
        self.balance_of: dict[int, list[tuple[np.ndarray, ...]]] = {}  # group index -> its split constraints
        for blocks in graph.balance:
            if blocks[0].size:
                self.balance_of.setdefault(int(graph.coupled_group[blocks[0][0]]), []).append(blocks)
        self.groups: list[_Group] = []
        self._rank: dict[int, np.ndarray] = {}  # group index -> rank of each coupled id (-1 elsewhere)
        for group in graph.groups:
            ids = np.flatnonzero(graph.coupled_group == group.index)
            if not (graph.prunable[ids] & ~np.isnan(scores[ids])).any():
                continue
            constraints = self.balance_of.get(group.index, [])
            widest = list(max(constraints, key=len)) if constraints else []
            order, forced = _rank_order(ids, scores, forced_mask, widest)
            rank = np.full(graph.num_coupled, -1, dtype=np.int64)
            rank[order] = np.arange(order.size)
            self._rank[group.index] = rank
            self.groups.append(_Group(group.index, order, forced, np.concatenate([[0.0], np.cumsum(value_of[order])]), ()))
        self.by_index = {g.index: k for k, g in enumerate(self.groups)}

    def _set_candidates(self, layer_keep: float, quantum: int) -> None:
        """Each group's floor (every member conv keeps `layer_keep`), balanced widths
        and candidate widths (quantum multiples, the floor, the full width)."""
        cfg = self.graph.cfg
        for g in self.groups:
            size = g.order.size
            rank = self._rank[g.index]
            w_min = max(g.forced, 1)
            for layer in self.graph.groups[g.index].members:
                floor = max(math.ceil(cfg.layers[layer].filters * layer_keep), 1)
                cum = self._cum(rank, self.graph.positions[layer], size)
                w_min = max(w_min, int(np.searchsorted(cum, min(floor, cum[-1]))))
            ok = np.ones(size + 1, dtype=bool)
            for blocks in self.balance_of.get(g.index, []):
                counts = np.stack([self._cum(rank, b, size) for b in blocks])
                ok &= (counts == counts[0]).all(0)
            step = quantum * max(1, math.ceil(size / (MAX_CANDIDATES * quantum)))
            wanted = sorted(w for w in {w_min, size} | set(range(step, size, step)) if w_min <= w <= size)
            g.candidates = tuple(sorted({next((v for v in range(w, size + 1) if ok[v]), size) for w in wanted}))
            g.allowed = ok

    def _build_units(self, conv_scores: Mapping[int, np.ndarray], units: bool) -> None:
        """The removable residual units: their ops, their private groups, and their
        convs' own cumulative |score| on shared groups (part of their value)."""
        graph = self.graph
        self.units = list(graph.units) if units else []
        self.unit_ops: list[tuple[int, ...]] = []
        self.op_unit: dict[int, int] = {}
        self.unit_own: list[list[tuple[int, np.ndarray]]] = []  # (group index, cumulative own |score|)
        for u, unit in enumerate(self.units):
            layers = set(unit.layers)
            self.unit_ops.append(tuple(i for i, op in enumerate(self.ops) if op.layer in layers))
            self.op_unit.update((i, u) for i in self.unit_ops[-1])
            own = []
            for conv in unit.convs:
                gi = int(graph.coupled_group[graph.positions[conv][0]])
                if gi not in self.by_index:
                    continue
                if set(graph.groups[gi].members) <= set(unit.convs):
                    self.groups[self.by_index[gi]].unit = u
                elif conv in conv_scores:
                    r = self._rank[gi][graph.positions[conv]]
                    weights = np.abs(np.asarray(conv_scores[conv], dtype=np.float64))
                    size = self.groups[self.by_index[gi]].order.size
                    own.append((gi, np.concatenate([[0.0], np.cumsum(np.bincount(r[r >= 0], weights=weights[r >= 0], minlength=size))])))
            self.unit_own.append(own)

    # ------------------------------------------------------------------ channel counts
    @staticmethod
    def _cum(rank: np.ndarray, ids: np.ndarray, size: int) -> np.ndarray:
        r = rank[ids]
        r = r[r >= 0]
        return np.concatenate([[0], np.cumsum(np.bincount(r, minlength=size))]).astype(np.int64)

    def _tensor_counts(self, ids: np.ndarray) -> tuple[int, list[tuple[int, np.ndarray]]]:
        parts = []
        constant = int(ids.size)
        for gi in np.unique(self.graph.coupled_group[ids]):
            gi = int(gi)
            if gi not in self._rank:
                continue
            cum = self._cum(self._rank[gi], ids, self.groups[self.by_index[gi]].order.size)
            constant -= int(cum[-1])
            parts.append((gi, cum))
        return constant, parts

    def channels(self, t: int, override: Mapping[int, int]) -> int:
        constant, parts = self.tensor_parts[t]
        return constant + sum(int(cum[override.get(gi, self.widths[self.by_index[gi]])]) for gi, cum in parts)

    def _query(self, i: int, override: Mapping[int, int]) -> tuple[Spec, dict[str, int]]:
        op = self.ops[i]
        return op.base, {name: max(self.channels(t, override) // div, 1) for name, t, div in op.axes}

    def _op_cost(self, i: int, override: Mapping[int, int]) -> float:
        base, channels = self._query(i, override)
        key = (i, tuple(channels.values()))
        if key not in self._cost_cache:
            self._cost_cache[key] = self.grid.cost(base, channels)
        return self._cost_cache[key]

    # ------------------------------------------------------------------ state
    def alive(self, i: int) -> bool:
        return self.op_unit.get(i) not in self.removed

    def total_us(self) -> float:
        return self.fixed_us + sum(c for i, c in enumerate(self.costs) if self.alive(i))

    def group_active(self, k: int) -> bool:
        unit = self.groups[k].unit
        return unit is None or unit not in self.removed

    def unit_value(self, u: int) -> float:
        value = 0.0
        for k, g in enumerate(self.groups):
            if g.unit == u:
                value += float(g.value[self.widths[k]])
        for gi, cum in self.unit_own[u]:
            value += float(cum[self.widths[self.by_index[gi]]])
        return value

    def width_move(self, k: int, w: int) -> tuple[float, float]:
        """(importance gained, microseconds added) of setting group k to width w.

        An op never costs more with fewer channels, nor less with more: the table's
        noise is not allowed to say otherwise.
        """
        g = self.groups[k]
        override = {g.index: w}
        narrower = w < self.widths[k]
        d_t = 0.0
        for i in g.ops:
            if self.alive(i):
                change = self._op_cost(i, override) - self.costs[i]
                d_t += min(change, 0.0) if narrower else max(change, 0.0)
        return float(g.value[w] - g.value[self.widths[k]]), d_t

    def prefetch_moves(self, ks: set[int], up: bool, fine: bool = False, lookahead: int | None = LOOKAHEAD) -> None:
        """Measure, in one table call, what the moves of groups `ks` need and the
        cost cache does not hold."""
        queries = []
        for k in ks:
            for w in self._next(k, up, fine, lookahead):
                override = {self.groups[k].index: w}
                for i in self.groups[k].ops:
                    base, channels = self._query(i, override)
                    if (i, tuple(channels.values())) not in self._cost_cache:
                        queries.append((base, channels))
        if queries:
            self.grid.prefetch(queries)

    def _next(self, k: int, up: bool, fine: bool = False, lookahead: int | None = LOOKAHEAD) -> list[int]:
        """Widths a move of group k may go to: the next `lookahead` candidates below
        or above (all of them with None); with `fine`, every balanced width up to the
        next candidate above."""
        g = self.groups[k]
        cands, w = g.candidates, self.widths[k]
        i = int(np.searchsorted(cands, w, side="right"))
        if fine and up:
            stop = cands[i] if i < len(cands) else w
            return [v for v in range(w + 1, stop + 1) if g.allowed[v]]
        if up:
            return list(cands[i : None if lookahead is None else i + lookahead])
        j = int(np.searchsorted(cands, w, side="left"))
        return list(cands[0 if lookahead is None else max(0, j - lookahead) : j])[::-1]

    def set_width(self, k: int, w: int) -> None:
        self.widths[k] = w
        for i in self.groups[k].ops:
            self.costs[i] = self._op_cost(i, {})

    # ------------------------------------------------------------------ the greedy
    def _best_down(self, k: int) -> tuple[tuple[float, float], int] | None:
        """Group k's best move down: ((importance lost per us saved, -us saved), width).

        The next `LOOKAHEAD` candidates are tried first; when none of them saves time
        (a flat stretch of the staircase, or noise in the table), every lower one.
        """
        for lookahead in (LOOKAHEAD, None):
            widths = self._next(k, up=False, lookahead=lookahead)
            if lookahead is None:
                self.prefetch_moves({k}, up=False, lookahead=None)
            best = None
            for w in widths:
                gain, d_t = self.width_move(k, w)
                if d_t < -1e-6:
                    key = (-gain / -d_t, d_t)
                    if best is None or key < best[0]:
                        best = (key, w)
            if best is not None or len(widths) < LOOKAHEAD:
                return best
        return None

    def down(self, target_us: float) -> None:
        """Remove importance at the lowest cost per microsecond until under `target_us`."""
        best: dict[int, tuple[tuple[float, float], int] | None] = {}
        dirty = set(range(len(self.groups)))
        total = self.total_us()
        while total > target_us:
            self.prefetch_moves({k for k in dirty if self.group_active(k)}, up=False)
            for k in dirty:
                best[k] = self._best_down(k) if self.group_active(k) else None
            choice: tuple[tuple[float, float], str, int, int] | None = None
            for k, move in best.items():
                if move is not None and (choice is None or move[0] < choice[0]):
                    choice = (move[0], "width", k, move[1])
            for u in range(len(self.units)):
                if u in self.removed:
                    continue
                saved = sum(self.costs[i] for i in self.unit_ops[u])
                if saved > 1e-6:
                    key = (self.unit_value(u) / saved, -saved)
                    if choice is None or key < choice[0]:
                        choice = (key, "unit", u, 0)
            if choice is None:
                raise PruneError(
                    f"the latency budget of {target_us / 1000:.3f} ms is below the fastest plan found "
                    f"({total / 1000:.3f} ms: no group can be narrowed and no residual unit removed to save time; floor prune.layer_keep)"
                )
            _, kind, k, w = choice
            if kind == "width":
                self.set_width(k, w)
                dirty = {k} | self.neighbours[k]
            else:
                self.removed.add(k)
                dirty = {j for j, g in enumerate(self.groups) if g.unit == k or set(g.ops) & set(self.unit_ops[k])}
            total = self.total_us()

    def fill(self, target_us: float, fine: bool = False) -> None:
        """Add importance at the highest gain per microsecond while it fits `target_us`
        (with `fine`, also by widths between the candidates: the last top-up)."""
        while True:
            total = self.total_us()
            slack = target_us - total
            active = {k for k in range(len(self.groups)) if self.group_active(k)}
            self.prefetch_moves(active, up=True, fine=fine)
            choice: tuple[float, str, int, int] | None = None
            for k in active:
                for w in self._next(k, up=True, fine=fine):
                    gain, d_t = self.width_move(k, w)
                    if gain <= 0 or d_t > slack:
                        continue
                    ratio = math.inf if d_t <= 1e-6 else gain / d_t
                    if choice is None or ratio > choice[0]:
                        choice = (ratio, "width", k, w)
            for u in sorted(self.removed):
                cost = sum(self.costs[i] for i in self.unit_ops[u])
                if cost <= slack:
                    ratio = math.inf if cost <= 1e-6 else self.unit_value(u) / cost
                    if choice is None or ratio > choice[0]:
                        choice = (ratio, "unit", u, 0)
            if choice is None:
                return
            _, kind, k, w = choice
            if kind == "width":
                self.set_width(k, w)
            else:
                self.removed.discard(k)

    def keep_mask(self) -> np.ndarray:
        keep = np.ones(self.graph.num_coupled, dtype=bool)
        for k, g in enumerate(self.groups):
            if self.group_active(k):
                keep[g.order[self.widths[k] :]] = False
        return keep
