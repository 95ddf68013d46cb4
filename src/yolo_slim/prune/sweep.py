"""Pruning sweeps: the table, the plot and the optimal pruning point.

`python prune.py -m prune.global_percent=0.7,0.8,0.88,0.89,0.9` runs one prune job per
setting; each writes `report.json` in its job dir. When the multirun ends,
`PruneSweepCallback` (a Hydra callback registered in `conf/prune.yaml`) collects the
job rows and writes into the sweep dir `sweep.md`, `sweep.csv`, `sweep.png` and
`optimal.json`. The optimal pruning point, chosen by hand in the original tutorial, is
the strongest setting (lowest BFLOPs) that the acceptance rule accepts
(`yolo_slim.prune.accept.Acceptance`: mAP@0.5 within `prune.tolerance` and at least
`prune.keep_map` of the unpruned model's, recall at least `prune.keep_recall` of its
recall, and an unpruned model whose mAP@0.5 reaches `prune.min_map`). The table says
for every row why it was accepted or rejected.

The table, the choice and the plot are pure functions of row dicts (`collect_rows`,
`sweep_table`, `choose_optimal`, `plot_sweep`, `write_sweep`), usable without Hydra.
A row holds `setting`, `precision`, `recall`, `mAP50` (absent in cost-only runs),
`params`, `weights_mib`, `latency_ms`, `bflops`, optionally `ov_latency_ms` (the
measured OpenVINO batch-1 latency), `ov_unpruned_ms` (the unpruned model's, timed round-robin
with it in the job's own session) and `ov_speedup` (their ratio), for channel plans `global_percent` (requested),
`threshold` and `achieved_percent` (the fraction of prunable channels actually cut),
and, for job rows, `run_dir`, `cfg`, `weights`, `ckpt`; a row judged again after a short
fine-tune holds those metrics under `recovered` (`yolo_slim.prune.recovery`), and the
table then gains their columns.

(A little over 400 lines: the rows, the choice, the table, the plot and the multirun
callback all read the same row dicts and `COLUMNS`; split, each part would import
the others' private formatting.)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from yolo_slim.errors import ConfigError, PruneError
from yolo_slim.io.atomic import write_atomic
from yolo_slim.prune import recovery
from yolo_slim.prune.accept import Acceptance
from yolo_slim.tables import cell, markdown_table

_log = logging.getLogger(__name__)

Row = Mapping[str, Any]

REFERENCE_SETTING = "unpruned"
ERROR_NAME = "error.json"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("setting", "setting"),
    ("precision", "P"),
    ("recall", "R"),
    ("mAP50", "mAP@0.5"),
    ("delta_mAP50", "ΔmAP@0.5"),
    ("global_percent", "global_percent"),
    ("threshold", "threshold"),
    ("achieved_percent", "cut (achieved)"),
    ("params", "Params"),
    ("weights_mib", ".weights (MiB)"),
    ("latency_ms", "inference (ms)"),
    ("ov_latency_ms", "OpenVINO (ms)"),
    ("ov_unpruned_ms", "OpenVINO unpruned, same job (ms)"),
    ("ov_speedup", "OpenVINO speed-up"),
    ("bflops", "BFLOPS"),
    ("optimal", "optimal"),
    ("verdict", "accepted?"),
)
"""(row key, column title) of the sweep table: the original tutorial's columns, the
threshold with the requested and achieved percent, the optimal mark and the verdict."""
RECOVERED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("recovered_recall", "R (fine-tuned)"),
    ("recovered_mAP50", "mAP@0.5 (fine-tuned)"),
)
"""Inserted before the verdict when some row was judged after a short fine-tune
(`yolo_slim.prune.recovery`)."""
PLAN_KEYS = ("global_percent", "threshold", "achieved_percent")
"""Plan fields a job's row carries into the table."""


@dataclass(frozen=True)
class SweepRows:
    """What a sweep dir holds: the unpruned reference row, one row per finished job,
    and the failed jobs (`{"run_dir", "setting", "error"}`)."""

    reference: dict[str, Any] | None
    rows: list[dict[str, Any]]
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OptimalChoice:
    """The optimal pruning point, or None with the reason none was chosen.

    Attributes:
        row: the chosen row, or None.
        reference_map: the unpruned model's mAP@0.5 (None in cost-only sweeps).
        acceptance: the rule the rows were judged by.
        reason: one sentence saying what was chosen and why (or why nothing was).
    """

    row: dict[str, Any] | None
    reference_map: float | None
    acceptance: Acceptance
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON written as `optimal.json`."""
        row = self.row or {}
        return {
            "setting": row.get("setting"),
            "reason": self.reason,
            "acceptance": self.acceptance.to_dict(),
            "reference_mAP50": self.reference_map,
            "row": dict(row) if self.row else None,
            **{k: row.get(k) for k in ("cfg", "weights", "ckpt", "run_dir")},
        }


# ---------------------------------------------------------------------- rows
def setting_label(plan: Mapping[str, Any], mode: str | None = None) -> str:
    """A short label of a plan's strength, e.g. `channel global_percent=0.88`."""
    parts = [mode] if mode else []
    if plan.get("latency_budget") is not None:
        parts.append(f"latency_budget={plan['latency_budget']:g}")
    elif plan.get("latency_budget_ms") is not None:
        parts.append(f"latency_budget_ms={plan['latency_budget_ms']:g}")
    if plan.get("global_percent") is not None:
        parts.append(f"global_percent={plan['global_percent']:g}")
        if int(plan.get("channel_multiple") or 1) != 1:
            parts.append(f"channel_multiple={plan['channel_multiple']}")
    if plan.get("shortcuts"):
        parts.append(f"shortcuts={plan['shortcuts']}")
    return " ".join(parts) or "plan"


def rows_from_report(report: Mapping[str, Any], run_dir: str | os.PathLike | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(reference row, pruned row) of one job's `report.json` content."""
    rows = report["rows"]
    reference = {**rows["original"], "setting": REFERENCE_SETTING}
    setting = report.get("setting") or setting_label(report.get("plan", {}), report.get("mode"))
    row = {**rows["pruned"], "setting": setting}
    if reference.get("ov_latency_ms") and row.get("ov_latency_ms"):
        # unpruned over pruned, timed round-robin in the job's own session: free of the drift between jobs
        row["ov_unpruned_ms"] = float(reference["ov_latency_ms"])
        row["ov_speedup"] = float(reference["ov_latency_ms"]) / float(row["ov_latency_ms"])
        reference["ov_speedup"] = 1.0
    row.update({k: report["plan"][k] for k in PLAN_KEYS if report.get("plan", {}).get(k) is not None})
    if report.get("search"):
        row["search_evaluations"] = report["search"]["evaluations"]
    if report.get("overrides"):
        row["overrides"] = list(report["overrides"])
    if run_dir is not None:
        run_dir = Path(run_dir)
        row["run_dir"] = str(run_dir)
        for key, name in (("cfg", "pruned.cfg"), ("weights", "pruned.weights"), ("ckpt", "pruned.ckpt")):
            row[key] = str(run_dir / name)
    return reference, row


def _same_reference(a: Row, b: Row) -> bool:
    keys = ("params", "bflops", "mAP50")
    return all((k in a) == (k in b) and (k not in a or math.isclose(float(a[k]), float(b[k]), rel_tol=1e-6, abs_tol=1e-9)) for k in keys)


def collect_rows(sweep_dir: str | os.PathLike) -> SweepRows:
    """The rows of every job under `sweep_dir` (each `*/report.json`, any depth).

    Raises:
        PruneError: the jobs pruned different unpruned models (their reference rows
            differ), so one table would compare unlike things.
    """
    root = Path(sweep_dir)
    reference: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for path in sorted(root.rglob("report.json"), key=lambda p: (len(p.parts), str(p))):
        ref, row = rows_from_report(json.loads(path.read_text()), path.parent)
        if reference is None:
            reference = ref
        elif not _same_reference(reference, ref):
            raise PruneError(
                f"{path}: its unpruned model differs from the other jobs' (params {ref['params']} vs {reference['params']}, "
                f"BFLOPs {ref['bflops']:.3f} vs {reference['bflops']:.3f}); sweep one model at a time"
            )
        rows.append(row)
    same_job = [float(r["ov_unpruned_ms"]) for r in rows if r.get("ov_unpruned_ms") is not None]
    if reference is not None and same_job:
        # each job timed the unpruned model beside its own; the machine's speed drifts between jobs
        reference["ov_latency_ms"] = statistics.median(same_job)
    common: set[str] | None = None
    for row in rows:
        common = set(row.get("overrides", [])) if common is None else common & set(row.get("overrides", []))
    for path in sorted(root.rglob(ERROR_NAME)):
        failure = {"run_dir": str(path.parent), **json.loads(path.read_text())}
        if common and failure.get("overrides"):  # name a failed job by what its sweep varied
            failure["setting"] = " ".join(o for o in failure["overrides"] if o not in common) or failure["setting"]
        failures.append(failure)
    return SweepRows(reference, rows, failures)


# ---------------------------------------------------------------------- choice
OPTIMAL_AXES: dict[str, tuple[str, str]] = {
    "bflops": ("bflops", "BFLOPs"),
    "latency": ("ov_latency_ms", "measured OpenVINO latency"),
}


LATENCY_FRACTION = "ov_latency_fraction"
"""The plot's name for `latency_fraction` (not a row key)."""


def latency_fraction(row: Row) -> float | None:
    """A row's measured OpenVINO latency over the unpruned model's timed in the same job
    (1 / speed-up), None without both. Rows of different jobs compare by it: absolute
    times drift with the machine's load between jobs (0.66 and 0.94 ms for the same
    unpruned demo model in two jobs of one sweep)."""
    if row.get("ov_latency_ms") is None or not row.get("ov_unpruned_ms"):
        return None
    return float(row["ov_latency_ms"]) / float(row["ov_unpruned_ms"])


def choose_optimal(rows: Sequence[Row], reference: Row | None, acceptance: Acceptance | None = None,
                   axis: str = "bflops") -> OptimalChoice:
    """The strongest setting that `acceptance` accepts against `reference`.

    The strongest is the lowest on `axis`: ``bflops``, or ``latency`` (each row's
    measured OpenVINO batch-1 latency, ``ov_latency_ms``, compared as `latency_fraction`
    when the rows carry their job's unpruned timing; every accepted row must have it).
    Ties go to the higher mAP@0.5, then the fewer params, then the setting name (so the
    choice does not depend on the row order).

    Args:
        rows: pruned rows (the unpruned reference excluded).
        reference: the unpruned model's row (`mAP50`, `recall`); None, or a row without
            `mAP50`, for a cost-only sweep.
        acceptance: the rule (default `Acceptance()`).
        axis: ``bflops`` or ``latency`` (`OPTIMAL_AXES`).

    Raises:
        PruneError: an unknown axis, or ``latency`` with an accepted row that has no
            measured latency (``prune.latency.report=false``).
    """
    if axis not in OPTIMAL_AXES:
        raise PruneError(f"optimal-point axis {axis!r}: expected one of {', '.join(OPTIMAL_AXES)}")
    key, unit = OPTIMAL_AXES[axis]
    acceptance = acceptance if acceptance is not None else Acceptance()
    reference_map = None if reference is None or reference.get("mAP50") is None else float(reference["mAP50"])
    scored = [r for r in rows if r.get("mAP50") is not None]
    if reference_map is None or not scored:
        return OptimalChoice(None, reference_map, acceptance, "no optimal point: the sweep has no mAP@0.5 (cost-only runs, data=none)")
    problem = acceptance.reference_problem(reference)
    if problem is not None:
        return OptimalChoice(
            None, reference_map, acceptance,
            f"no optimal point: {problem}, so the unpruned model learned (almost) nothing and no setting can be said to "
            f"lose little; train longer or check the labels, or set {acceptance.prefix}.min_map lower to prune it anyway",
        )
    accepted = [r for r in scored if recovery.accepts(acceptance, r, reference)]
    if not accepted:
        best = max(scored, key=lambda r: recovery.kept_fraction(r, reference))
        return OptimalChoice(
            None, reference_map, acceptance,
            f"no setting is accepted ({acceptance.describe()}): the best, {best['setting']}, has "
            f"{recovery.verdict(acceptance, best, reference)}; sweep weaker settings or relax {acceptance.prefix}.tolerance / keep_map / keep_recall",
        )
    unmeasured = [str(r["setting"]) for r in accepted if r.get(key) is None]
    if unmeasured:
        raise PruneError(f"the optimal point by {axis} needs each setting's {key}; {', '.join(unmeasured)} has none "
                         "(prune.latency.report=false?)")
    fractions = axis == "latency" and all(latency_fraction(r) is not None for r in scored if r.get(key) is not None)
    value = (lambda r: float(latency_fraction(r))) if fractions else (lambda r: float(r[key]))
    row = min(accepted, key=lambda r: (value(r), -float(r["mAP50"]), int(r["params"]), str(r["setting"])))
    at = f"{float(row['bflops']):.3f} BFLOPs"
    if axis == "latency":
        at += f", {float(row[key]):.2f} ms" + (f", {1.0 / value(row):.2f}x faster than the unpruned model in its job" if fractions else "")
    quality = f"mAP@0.5 {float(row['mAP50']):.4f} vs unpruned {reference_map:.4f}"
    if recovery.RECOVERED in row:
        point, ref = recovery.judged(row, reference)
        quality = (f"mAP@0.5 {float(point['mAP50']):.4f} vs unpruned {float(ref['mAP50']):.4f} after {int(point.get('steps', 0))} "
                   f"steps of fine-tuning of both, {float(row['mAP50']):.4f} vs {reference_map:.4f} as cut")
    reason = (
        f"optimal: {row['setting']} ({at}, {quality}), the lowest {unit} of {len(accepted)} of {len(scored)} accepted settings; "
        f"{acceptance.describe()}"
    )
    if all(value(r) >= value(row) for r in scored if r.get(key) is not None):
        reason += (f"; it is also the strongest setting the sweep tried, so a stronger one may keep the mAP too: "
                   f"sweep past it to find where the mAP falls")
    return OptimalChoice(dict(row), reference_map, acceptance, reason)


# ---------------------------------------------------------------------- table
def sweep_table(rows: Sequence[Row], reference: Row | None = None, choice: OptimalChoice | None = None) -> list[dict[str, Any]]:
    """The sweep table: the reference first, then the rows by falling BFLOPs.

    Returns:
        One dict per line with the keys of `COLUMNS` (raw numbers; None where a
        value is missing, e.g. quality in cost-only runs).
    """
    chosen = choice.row if choice is not None else None
    ref_map = reference.get("mAP50") if reference is not None else None
    acceptance = choice.acceptance if choice is not None else None
    lines = []
    ordered = ([reference] if reference is not None else []) + sorted(rows, key=lambda r: (-float(r["bflops"]), str(r["setting"])))
    for row in ordered:
        line = {key: row.get(key) for key, _ in COLUMNS}
        fine_tuned = row.get(recovery.RECOVERED) or {}
        line.update(recovered_recall=fine_tuned.get("recall"), recovered_mAP50=fine_tuned.get("mAP50"))
        line["delta_mAP50"] = float(row["mAP50"]) - float(ref_map) if ref_map is not None and row.get("mAP50") is not None else None
        is_chosen = chosen is not None and row is not reference and row.get("setting") == chosen.get("setting") and row.get("run_dir") == chosen.get("run_dir")
        line["optimal"] = "yes" if is_chosen else ""
        if row is reference:
            line["verdict"] = "reference"
        elif acceptance is not None and reference is not None and ref_map is not None:
            line["verdict"] = recovery.verdict(acceptance, row, reference)
        lines.append(line)
    return lines


CELL_FORMATS: dict[str, tuple[str, Any]] = {
    "params": (",", int),
    **{k: (".4f", float) for k in ("precision", "recall", "mAP50", "recovered_recall", "recovered_mAP50")},
    **{k: (".3f", float) for k in ("global_percent", "achieved_percent", "bflops")},
    "threshold": (".3g", float),
    "delta_mAP50": ("+.4f", float),
    **{k: (".2f", float) for k in ("weights_mib", "latency_ms", "ov_latency_ms", "ov_unpruned_ms", "ov_speedup")},
}
"""(format spec, cast) of the numeric columns of the markdown table; other columns print as text."""


def _fmt(key: str, value: Any) -> str:
    spec, cast = CELL_FORMATS.get(key, ("", str))
    return cell(value, spec, cast)


def table_columns(table: Sequence[Row]) -> tuple[tuple[str, str], ...]:
    """`COLUMNS`, with `RECOVERED_COLUMNS` before the verdict when some line has them."""
    if not any(line.get(k) is not None for line in table for k, _ in RECOVERED_COLUMNS):
        return COLUMNS
    return (*COLUMNS[:-1], *RECOVERED_COLUMNS, COLUMNS[-1])


def format_markdown(table: Sequence[Row], title: str = "Pruning sweep", notes: Iterable[str] = ()) -> str:
    """The table as markdown, the optimal row's setting in bold."""
    columns = table_columns(table)
    out = [f"# {title}", ""]
    out += [*notes, ""] if notes else []
    out += markdown_table([t for _, t in columns], (_markdown_cells(line, columns) for line in table))
    return "\n".join(out) + "\n"


def _markdown_cells(line: Row, columns: Sequence[tuple[str, str]] = COLUMNS) -> list[str]:
    """One table line's cells, the optimal row's setting in bold."""
    cells = [_fmt(k, line.get(k)) for k, _ in columns]
    if line.get("optimal"):
        cells[0] = f"**{cells[0]}**"
    return cells


def format_csv(table: Sequence[Row]) -> str:
    """The table as CSV with the column titles as header and unrounded numbers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = table_columns(table)
    writer.writerow([t for _, t in columns])
    for line in table:
        writer.writerow(["" if line.get(k) is None else line.get(k) for k, _ in columns])
    return buffer.getvalue()


# ---------------------------------------------------------------------- plot
def plot_sweep(rows: Sequence[Row], path: str | os.PathLike, reference: Row | None = None, choice: OptimalChoice | None = None) -> Path:
    """A PNG of mAP@0.5, P and R against BFLOPs (left), params and, when the rows
    have it, the measured OpenVINO latency (right).

    The unpruned model is drawn as a hollow marker, the accepted mAP@0.5 band below
    it shaded (down to `Acceptance.map_floor`), and the optimal point ringed; the
    mAP@0.5 of points judged after a short fine-tune is drawn as diamonds.
    Cost-only rows plot nothing but the axes (with a note). Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    points = sorted([*rows, *([reference] if reference is not None else [])], key=lambda r: float(r["bflops"]))
    panels = [("bflops", "BFLOPs", 1.0), ("params", "params (M)", 1e-6)]
    if rows and all(latency_fraction(r) is not None for r in rows):
        # same-job fractions: absolute ms of different jobs drift with the machine's load
        panels.append((LATENCY_FRACTION, "OpenVINO batch-1 latency (fraction of the unpruned model's, measured in each job)", 1.0))
    elif points and all(r.get("ov_latency_ms") is not None for r in points):
        panels.append(("ov_latency_ms", "OpenVINO batch-1 latency (ms, measured)", 1.0))

    def coord(r: Row, key: str) -> float:
        if key == LATENCY_FRACTION:
            return 1.0 if r is reference else float(latency_fraction(r))
        return float(r[key])

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), constrained_layout=True)
    for ax, (key, label, scale) in zip(axes, panels):
        for metric, name, style in (("mAP50", "mAP@0.5", "o-"), ("precision", "P", "s--"), ("recall", "R", "^--")):
            have = sorted((r for r in points if r.get(metric) is not None), key=lambda r: coord(r, key))
            if have:
                ax.plot([coord(r, key) * scale for r in have], [float(r[metric]) for r in have], style, label=name, markersize=4)
        fine_tuned = sorted((r for r in points if r.get(recovery.RECOVERED)), key=lambda r: coord(r, key))
        if fine_tuned:
            steps = int(fine_tuned[0][recovery.RECOVERED].get("steps", 0))
            ax.plot([coord(r, key) * scale for r in fine_tuned], [float(r[recovery.RECOVERED]["mAP50"]) for r in fine_tuned], "D:",
                    label=f"mAP@0.5 after {steps} fine-tuning steps", markersize=5)
        if reference is not None and reference.get("mAP50") is not None:
            x = coord(reference, key) * scale
            ax.plot([x], [float(reference["mAP50"])], "o", mfc="none", mec="k", markersize=10, label="unpruned")
            if choice is not None:
                ref_map = float(reference["mAP50"])
                ax.axhspan(choice.acceptance.map_floor(ref_map), ref_map, color="g", alpha=0.12, label="accepted mAP")
        if choice is not None and choice.row is not None:
            ax.plot([coord(choice.row, key) * scale], [float(choice.row["mAP50"])], "o", mfc="none", mec="r", markersize=14, mew=2, label="optimal")
        if not any(r.get("mAP50") is not None for r in points):
            ax.text(0.5, 0.5, "cost-only sweep: no mAP", transform=ax.transAxes, ha="center")
        ax.set_xlabel(label)
        ax.set_ylabel("score")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Pruning sweep: quality against cost")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------- all of it
def write_sweep(sweep_dir: str | os.PathLike, acceptance: Acceptance | None = None, collected: SweepRows | None = None,
                axis: str = "bflops") -> dict[str, Any]:
    """Collect the jobs of `sweep_dir` and write `sweep.md`, `sweep.csv`, `sweep.png`
    and `optimal.json` there; the optimal point is the lowest on `axis` (`choose_optimal`).

    Returns:
        Paths by name (`md`, `csv`, `png`, `optimal`) plus `choice` (the
        `OptimalChoice`) and `failures` (the failed jobs).

    Raises:
        PruneError: no job of the sweep wrote a report.
    """
    root = Path(sweep_dir)
    collected = collected if collected is not None else collect_rows(root)
    if not collected.rows:
        failed = "; ".join(f"{f['run_dir']}: {f.get('error')}" for f in collected.failures)
        raise PruneError(f"{root}: no prune job wrote report.json" + (f" (failed: {failed})" if failed else ""))
    reference = collected.reference
    choice = choose_optimal(collected.rows, reference, acceptance, axis)
    table = sweep_table(collected.rows, reference, choice)
    notes = [choice.reason]
    notes += [f"failed: {f.get('setting') or f['run_dir']}: {f.get('error')}" for f in collected.failures]
    written: dict[str, Any] = {
        "md": write_atomic(root / "sweep.md", format_markdown(table, notes=notes)),
        "csv": write_atomic(root / "sweep.csv", format_csv(table)),
        "png": plot_sweep(collected.rows, root / "sweep.png", reference, choice),
        "optimal": write_atomic(root / "optimal.json", json.dumps(choice.to_dict(), indent=1) + "\n"),
    }
    written["choice"] = choice
    written["failures"] = collected.failures
    return written


def record_failure(output_dir: str | os.PathLike, error: BaseException, overrides: Sequence[str] = ()) -> Path:
    """Write `error.json` into a failed job's dir, so the sweep lists the failure."""
    text = json.dumps({"setting": " ".join(overrides), "overrides": list(overrides), "error": str(error)}, indent=1)
    return write_atomic(Path(output_dir) / ERROR_NAME, text + "\n")


def fail_job(error: BaseException, log_dir: Path | None = None) -> None:
    """What `prune.py` does with a user error: print it; in a single run remove its run
    dir when nothing but Hydra's files is in it (`discard_unused_run_dir`, parents up to
    `log_dir`) and exit 2; in a multirun write `error.json` and return, so the other
    jobs run and the sweep callback lists the failure (and then exits 2)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from yolo_slim.io.run_dir import discard_unused_run_dir

    print(f"error: {error}", file=sys.stderr)
    hc = HydraConfig.get() if HydraConfig.initialized() else None
    if hc is None or hc.mode != RunMode.MULTIRUN:
        if hc is not None and log_dir is not None:
            discard_unused_run_dir(Path(hc.runtime.output_dir), log_dir)
        sys.exit(2)
    record_failure(hc.runtime.output_dir, error, list(hc.overrides.task))


class PruneSweepCallback(Callback):
    """Hydra callback: after a `prune.py -m ...` multirun, writes the sweep outputs,
    judging the rows by the acceptance rule in `prune.*` (`tolerance`, `keep_map`,
    `keep_recall`, `min_map`) and taking the lowest on `prune.optimal_axis`."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            p = config.get("prune") or {}
            written = write_sweep(sweep_dir, Acceptance.from_config(p, "prune"), axis=str(p.get("optimal_axis") or "bflops"))
        except (PruneError, ConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        print(f"sweep: {written['md']}\n  {written['choice'].reason}", flush=True)
        if written["failures"]:
            print(f"error: {len(written['failures'])} sweep job(s) failed, see {written['md']}", file=sys.stderr)
            sys.exit(2)
