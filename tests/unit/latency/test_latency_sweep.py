"""Sweeps on a latency axis: the measured OpenVINO column, the plot panel, the labels."""

from __future__ import annotations

import csv
import io
import struct

import pytest

from yolo_slim.errors import PruneError

from yolo_slim.prune.sweep import collect_rows, choose_optimal, format_csv, format_markdown, plot_sweep, rows_from_report, setting_label, sweep_table


def _row(setting: str, bflops: float, map50: float, ov_ms: float | None) -> dict:
    r = {"setting": setting, "bflops": bflops, "params": 1000, "weights_mib": 0.1, "latency_ms": 1.0, "mAP50": map50, "precision": map50, "recall": map50}
    if ov_ms is not None:
        r["ov_latency_ms"] = ov_ms
    return r


def _png_width(path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def test_the_table_and_the_plot_show_the_measured_latency(tmp_path):
    reference = _row("unpruned", 10.0, 0.8, 4.0)
    rows = [_row("latency latency_budget=0.5", 4.0, 0.79, 2.1), _row("latency latency_budget=0.7", 6.0, 0.80, 2.9)]
    choice = choose_optimal(rows, reference)
    table = sweep_table(rows, reference, choice)
    assert "| unpruned | 0.8000 | 0.8000 | 0.8000 | +0.0000 | - | - | - | 1,000 | 0.10 | 1.00 | 4.00 | - | - | 10.000 |" in format_markdown(table)
    parsed = list(csv.reader(io.StringIO(format_csv(table))))
    assert float(parsed[1][parsed[0].index("OpenVINO (ms)")]) == 4.0
    with_latency = plot_sweep(rows, tmp_path / "a.png", reference, choice)
    without = plot_sweep([{k: v for k, v in r.items() if k != "ov_latency_ms"} for r in rows], tmp_path / "b.png", reference, choice)
    assert _png_width(with_latency) > 1.4 * _png_width(without)  # a third panel


def test_the_optimal_point_can_be_the_lowest_measured_latency():
    reference = _row("unpruned", 10.0, 0.8, 4.0)
    # fewer BFLOPs but slower on the device (channel counts off the latency staircase)
    rows = [_row("channel global_percent=0.8", 3.0, 0.8, 3.5), _row("latency latency_budget=0.5", 4.0, 0.8, 2.0)]
    assert choose_optimal(rows, reference).row["setting"] == "channel global_percent=0.8"
    by_latency = choose_optimal(rows, reference, axis="latency")
    assert by_latency.row["setting"] == "latency latency_budget=0.5"
    assert "the lowest measured OpenVINO latency of 2 of 2 accepted settings" in by_latency.reason
    with pytest.raises(PruneError, match="needs each setting's ov_latency_ms; channel global_percent=0.8 has none"):
        choose_optimal([{k: v for k, v in rows[0].items() if k != "ov_latency_ms"}, rows[1]], reference, axis="latency")
    with pytest.raises(PruneError, match="optimal-point axis 'params': expected one of bflops, latency"):
        choose_optimal(rows, reference, axis="params")


def test_setting_labels_name_the_budget():
    assert setting_label({"latency_budget": 0.5, "latency_budget_ms": 2.0}, "latency") == "latency latency_budget=0.5"
    assert setting_label({"latency_budget": None, "latency_budget_ms": 2.5}, "latency") == "latency latency_budget_ms=2.5"
    assert setting_label({"global_percent": 0.8}, "channel") == "channel global_percent=0.8"


def test_each_job_row_carries_its_speed_up_measured_in_its_own_session():
    """Two jobs whose sessions ran at different speeds: their speed-ups still compare."""
    jobs = [({"original": _row("o", 10.0, 0.8, 4.0), "pruned": _row("p", 5.0, 0.8, 2.0)}, 0.5),
            ({"original": _row("o", 10.0, 0.8, 5.0), "pruned": _row("p", 4.0, 0.8, 2.0)}, 0.6)]
    rows = []
    for job_rows, percent in jobs:
        reference, row = rows_from_report({"rows": job_rows, "plan": {"global_percent": percent}, "mode": "channel"})
        rows.append(row)
    assert [r["ov_speedup"] for r in rows] == [2.0, 2.5] and reference["ov_speedup"] == 1.0
    table = sweep_table(rows, reference, choose_optimal(rows, reference))
    md = format_markdown(table)
    # OpenVINO (ms), the unpruned model's in the same job, speed-up, BFLOPS
    assert "| 2.00 | 5.00 | 2.50 | 4.000 |" in md and "| 2.00 | 4.00 | 2.00 | 5.000 |" in md
    unmeasured = {"original": _row("o", 10.0, 0.8, None), "pruned": _row("p", 5.0, 0.8, None)}
    assert "ov_speedup" not in rows_from_report({"rows": unmeasured, "plan": {}})[1]


def test_jobs_timed_at_different_machine_speeds_compare_by_their_same_job_fractions(tmp_path):
    """The machine slowed down between two jobs: by absolute ms the weaker plan looks
    faster, by each job's own unpruned timing the stronger one is."""
    import json

    for name, unpruned_ms, pruned_ms, bflops in (("a", 1.0, 0.6, 6.0), ("b", 2.0, 0.9, 4.0)):
        job = tmp_path / name
        job.mkdir()
        report = {"rows": {"original": _row("o", 10.0, 0.8, unpruned_ms), "pruned": _row("p", bflops, 0.8, pruned_ms)},
                  "plan": {"latency_budget": bflops / 10}, "mode": "latency"}
        (job / "report.json").write_text(json.dumps(report))
    found = collect_rows(tmp_path)
    assert found.reference["ov_latency_ms"] == pytest.approx(1.5)  # the median of the jobs' unpruned timings
    by_ms = {r["setting"]: r["ov_latency_ms"] for r in found.rows}
    assert by_ms["latency latency_budget=0.6"] < by_ms["latency latency_budget=0.4"]
    choice = choose_optimal(found.rows, found.reference, axis="latency")
    assert choice.row["setting"] == "latency latency_budget=0.4"
    assert "0.90 ms, 2.22x faster than the unpruned model in its job" in choice.reason
    png = plot_sweep(found.rows, tmp_path / "sweep.png", found.reference, choice)
    assert _png_width(png) > 0
