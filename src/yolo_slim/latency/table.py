"""The latency table: per-layer OpenVINO times of one device, measured once, cached.

An entry is the cost of one layer spec (`yolo_slim.latency.specs`) inside a network
on the device, in microseconds per batch-1 inference: the wall time of its
single-layer model (`yolo_slim.latency.micro`; the lower quartile of its samples by
default) minus the fixed per-inference cost,
or, for ops fed by helper convs, minus the time of the helpers alone. The fixed
cost (`FixedCost`) comes from a chain of k identical small convs, k = 1, 2, 4, 8,
16: wall time against k is a line whose intercept is the per-inference cost
(request start, thread wake-up, output) and whose slope is one small layer's cost.
Every measuring session times the chain next to the specs, round robin, and
subtracts its own intercept.

Noise: the entries are only as good as the machine is quiet. On the shared 2-core
development machine, with other jobs running, a 75 MFLOP conv's time held within
5 % from session to session while a 10 ms conv's varied 2x (its two threads are
preempted): measure the table on the deployment device when it is idle. A spec
whose samples spread (interquartile range over median above `MAX_SPREAD`) is
measured again, once; scaling entries by a small reference conv's time was tried
and dropped, as it does not follow how load slows long layers.

The channel quantum (`quantum`) is the SIMD block after which a conv's time steps
up, found by timing one conv at every output width 2..65 (`detect_quantum`).

The table lives in one JSON file per device identity (`describe`: device, its name,
the CPU model, OpenVINO version, threads, precision) under the cache dir, default
`$YOLO_SLIM_LATENCY_CACHE`, else `$XDG_CACHE_HOME/yolo_slim/latency` (`~/.cache/...`). It is built incrementally:
`entries(specs)` measures only the specs it does not hold yet, in chunks, saves
after each chunk (merging with entries other processes added), and stops with a
`LatencyError` between two chunks once this table object has measured for more
than `max_seconds` (what was measured stays cached, so a rerun continues).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from yolo_slim.errors import LatencyError
from yolo_slim.io.atomic import write_atomic
from yolo_slim.latency.measure import DeviceSettings, WallTimer, compile_model, describe, fit_line, measure_round_robin
from yolo_slim.latency.micro import CHAIN_SPEC, chain_model, helper_specs, helpers_model, layer_model
from yolo_slim.latency.specs import ConvSpec, Spec, spec_key
from yolo_slim.progress import progress_task

_log = logging.getLogger(__name__)

TABLE_VERSION = 1
CHAIN_LENGTHS = (1, 2, 4, 8, 16)
PROBE_WIDTHS = tuple(range(2, 66))
PROBE_SPEC = ConvSpec(cin=64, cout=64, size=3, stride=1, padding=1, groups=1, h=24, w=24, activation="leaky")
QUANTUM_CANDIDATES = (2, 4, 8, 16, 32)
JUMP = 1.08
"""A conv's time steps up after a block multiple m when t(m + 1) / t(m) exceeds this."""
MAX_SPREAD = 0.5
"""A spec whose samples spread more (interquartile range over median) is measured again, once."""


@dataclass(frozen=True)
class Entry:
    """One measured spec.

    Attributes:
        us: its cost inside a network, microseconds per inference.
        runs: samples taken.
    """

    us: float
    runs: int


@dataclass(frozen=True)
class FixedCost:
    """The chain fit, microseconds.

    Attributes:
        inference_us: the cost once per inference (the line's intercept).
        layer_us: one chain layer's cost (the slope), for reference.
    """

    inference_us: float
    layer_us: float


class LatencySource(Protocol):
    """What the predictor and the planner need from a table (tests give a formula)."""

    def entries(self, specs: Iterable[Spec]) -> dict[Spec, Entry]: ...

    def fixed(self) -> FixedCost: ...

    def quantum(self) -> int: ...


CACHE_ENV = "YOLO_SLIM_LATENCY_CACHE"


def default_cache_dir() -> Path:
    """`$YOLO_SLIM_LATENCY_CACHE` when set, else `$XDG_CACHE_HOME/yolo_slim/latency`,
    else `~/.cache/yolo_slim/latency`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yolo_slim" / "latency"


def detect_quantum(times: Mapping[int, float]) -> int:
    """The channel block after which time steps up, from times at consecutive widths.

    The quantum is the smallest candidate q whose multiples m (with m + 1 timed)
    mostly, 3 in 4, show a step t(m + 1) > JUMP * t(m); 1 when none does (no
    staircase).
    """
    for q in QUANTUM_CANDIDATES:
        multiples = [m for m in range(q, max(times), q) if m in times and m + 1 in times]
        if len(multiples) < 2:
            continue
        steps = sum(times[m + 1] > JUMP * times[m] for m in multiples)
        if steps >= 0.75 * len(multiples):
            return q
    return 1


class LatencyTable:
    """Measured per-layer latencies of one device, cached on disk (see the module doc).

    Args:
        settings: how timed models are compiled (device, threads, precision).
        cache_dir: folder of the table files; None: `default_cache_dir()`.
        runs: samples per spec.
        max_seconds: bound on this object's total measuring time.
        chunk: specs compiled and timed together.
        quantile: which quantile of each model's samples is its time; the lower
            quartile by default, which load bursts on a shared machine move less than
            the median (on a quiet machine the two agree).
    """

    def __init__(
        self,
        settings: DeviceSettings | None = None,
        cache_dir: str | os.PathLike | None = None,
        *,
        runs: int = 10,
        max_seconds: float = 600.0,
        chunk: int = 24,
        quantile: float = 0.25,
    ) -> None:
        self.settings = settings or DeviceSettings()
        if runs < 1 or chunk < 1 or not max_seconds > 0:
            raise LatencyError(f"latency table: runs={runs}, chunk={chunk} must be >= 1 and max_seconds={max_seconds} > 0")
        if not 0.0 <= quantile <= 1.0:
            raise LatencyError(f"latency table: quantile={quantile} must be in [0, 1]")
        self.runs, self.max_seconds, self.chunk, self.quantile = int(runs), float(max_seconds), int(chunk), float(quantile)
        from yolo_slim.openvino_core import new_core

        self._core = new_core()  # the timed models on a core of their own, as before the shared core (the prediction test was validated so)
        self.identity = describe(self.settings)
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.settings.device).strip("-").lower()
        self.path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = self.path / f"{slug}-{digest}.json"
        self._entries: dict[str, Entry] = {}
        self._fixed: FixedCost | None = None
        self._quantum: int | None = None
        self._extra: dict[str, Any] = {}
        self._standing: dict[Any, WallTimer] | None = None
        self.measured = 0
        self.seconds = 0.0
        self._load()

    # ------------------------------------------------------------------ file
    def _read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise LatencyError(f"{self.path}: unreadable latency table ({exc}); delete it to measure again") from None
        if not isinstance(data, dict) or data.get("version") != TABLE_VERSION or data.get("identity") != self.identity:
            raise LatencyError(f"{self.path}: not a version-{TABLE_VERSION} latency table of this device; delete it to measure again")
        return data

    def _load(self) -> None:
        data = self._read()
        if data is None:
            return
        try:
            self._entries = {k: Entry(float(v["us"]), int(v["runs"])) for k, v in data.get("entries", {}).items()}
            fixed = data.get("fixed")
            self._fixed = FixedCost(float(fixed["inference_us"]), float(fixed["layer_us"])) if fixed else None
            self._quantum = int(data["quantum"]["q"]) if data.get("quantum") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise LatencyError(f"{self.path}: malformed latency table entry ({exc}); delete it to measure again") from None
        self._extra = {k: data[k] for k in ("fixed", "quantum") if data.get(k)}

    def save(self) -> Path:
        """Write the table, merged with what the file holds now (atomically)."""
        on_disk = self._read() or {}
        mine = {k: {"us": e.us, "runs": e.runs} for k, e in self._entries.items()}
        entries = {**on_disk.get("entries", {}), **mine}
        data = {"version": TABLE_VERSION, "identity": self.identity, "entries": dict(sorted(entries.items()))}
        for key in ("fixed", "quantum"):
            value = self._extra.get(key) or on_disk.get(key)
            if value:
                data[key] = value
        return write_atomic(self.path, json.dumps(data, indent=1) + "\n")

    # ------------------------------------------------------------------ measuring
    def _check_time(self, pending: int) -> None:
        if self.seconds > self.max_seconds:
            raise LatencyError(
                f"latency table: measuring passed its bound of {self.max_seconds:g} s after {self.measured} layer shapes "
                f"({pending} still to measure); they are kept in {self.path}, so running again continues "
                "(or raise prune.latency.max_measure_s)"
            )

    def _timers(self, models: Mapping[Any, Any]) -> dict[Any, WallTimer]:
        """Compile `models` (key -> model) one after another and give each a timer.

        Not in parallel threads: compiling is most of the time spent on small layers, but
        a prune run whose process crashed (segfault) while compiling its two networks
        in a thread pool was seen on the development machine; one compile at a time is
        the safe order until that is understood."""
        return {k: WallTimer(compile_model(model, self.settings, self._core)) for k, model in models.items()}

    def measure(
        self,
        specs: Iterable[Spec],
        *,
        refresh: bool = False,
        fixed: bool = False,
        wall: Mapping[str, Any] | None = None,
        runs: int | None = None,
    ) -> dict[str, float]:
        """Measure `specs` (all of them with `refresh`, else the missing ones), the fixed
        costs when `fixed` (or when not known yet), and the whole models of `wall`
        (name -> `ov.Model` or IR path), and store the results. With `wall` or
        `fixed` everything is timed in one interleaved session, else in chunks.

        Args:
            runs: samples per model; default the table's `runs`.

        Returns:
            name -> median wall microseconds of each model in `wall`.

        Raises:
            LatencyError: compiling failed, or the table's time bound was passed
                (after saving what was measured).
        """
        todo = list(dict.fromkeys(s for s in specs if refresh or spec_key(s) not in self._entries))
        wall = dict(wall or {})
        runs = int(runs or self.runs)
        if wall or fixed:
            what = ", ".join(f"{n} {kind}" for n, kind in ((len(todo), "layer shapes"), (len(wall), "networks")) if n) or "fixed costs"
            with progress_task(f"latency table: measure {what} on {self.settings.device}"):
                result, noisy = self._session(todo, wall, runs)
        else:
            if self._fixed is None:
                self._session([], {}, runs)
            result, noisy = {}, []
            if todo:
                with progress_task(f"latency table: measure layer shapes on {self.settings.device}", len(todo)) as shapes:
                    for i in range(0, len(todo), self.chunk):
                        if i:  # past the bound, stop between chunks (the first always runs)
                            self._check_time(len(todo) - i)
                        chunk = todo[i : i + self.chunk]
                        noisy += self._session(chunk, {}, runs)[1]
                        shapes.advance(len(chunk), detail=f"{self.seconds:.0f} s of measuring")
        if noisy:  # samples that disagree: a burst of load hit them, so once more
            _log.info("latency table: measuring %d noisy layer shapes again", len(noisy))
            for i in range(0, len(noisy), self.chunk):
                self._session(noisy[i : i + self.chunk], {}, runs)
        if todo:
            _log.info("latency table: measured %d layer shapes (%.1f s of measuring so far, %d in the table) -> %s", len(todo), self.seconds, len(self._entries), self.path)
        return result

    def _session(self, specs: list[Spec], wall: Mapping[str, Any], runs: int) -> tuple[dict[str, float], list[Spec]]:
        """Time `specs`, their helpers' reference models, the fixed-cost chain and the
        `wall` models round robin; store entries and the fixed costs; save.

        Returns:
            The `wall` models' median microseconds, and the specs whose samples
            spread more than `MAX_SPREAD`.
        """
        start = time.monotonic()
        references = {helper_specs(s) for s in specs} - {()}
        if self._standing is None:  # the chain, compiled once per table object
            self._standing = self._timers({("chain", k): chain_model(k) for k in CHAIN_LENGTHS})
        for timer in self._standing.values():
            timer.samples = []
        models: dict[Any, Any] = {("spec", spec_key(s)): layer_model(s) for s in specs}
        models.update({("ref", ref): helpers_model(ref) for ref in references})
        models.update({("wall", name): model for name, model in wall.items()})
        timers = {**self._standing, **self._timers(models)}
        values = measure_round_robin(timers, runs, quantile=self.quantile)
        intercept, slope = fit_line(CHAIN_LENGTHS, [values[("chain", k)] for k in CHAIN_LENGTHS])
        intercept = min(max(intercept, 0.0), values[("chain", CHAIN_LENGTHS[0])])
        for s in specs:
            key, ref = spec_key(s), helper_specs(s)
            cost = values[("spec", key)] - (values[("ref", ref)] if ref else intercept)
            self._entries[key] = Entry(round(max(cost, 0.0), 3), len(timers[("spec", key)].samples))
        self._fixed = FixedCost(intercept, slope)
        self._extra["fixed"] = {
            "inference_us": intercept,
            "layer_us": slope,
            "chain_wall_us": {str(k): values[("chain", k)] for k in CHAIN_LENGTHS},
            "layer": spec_key(CHAIN_SPEC),
        }
        self.measured += len(specs)
        self.seconds += time.monotonic() - start
        self.save()
        noisy = [s for s in specs if timers[("spec", spec_key(s))].spread() > MAX_SPREAD]
        return {name: values[("wall", name)] for name in wall}, noisy

    # ------------------------------------------------------------------ LatencySource
    def entries(self, specs: Iterable[Spec]) -> dict[Spec, Entry]:
        """The entries of `specs`, measuring the ones the table lacks."""
        specs = list(specs)
        self.measure(specs)
        return {s: self._entries[spec_key(s)] for s in specs}

    def fixed(self) -> FixedCost:
        """The fitted fixed costs (measured on first use)."""
        if self._fixed is None:
            self.measure((), fixed=True)
        return self._fixed  # type: ignore[return-value]  # measure(fixed=True) sets it

    def quantum(self) -> int:
        """The channel quantum (probed on first use)."""
        if self._quantum is None:
            specs = {c: PROBE_SPEC.with_channels(cout=c) for c in PROBE_WIDTHS}
            self.measure(specs.values())
            times = {c: self._entries[spec_key(s)].us for c, s in specs.items()}
            self._quantum = detect_quantum(times)
            self._extra["quantum"] = {"q": self._quantum, "layer": spec_key(PROBE_SPEC), "widths": {str(c): t for c, t in times.items()}}
            self.save()
            _log.info("latency table: channel quantum %d (a conv's time steps up after multiples of it)", self._quantum)
        return self._quantum

    def __len__(self) -> int:
        return len(self._entries)
