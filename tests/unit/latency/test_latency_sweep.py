"""Sweeps on a latency axis: the measured OpenVINO column, the plot panel, the labels."""

from __future__ import annotations

import csv
import io
import struct

from yolo_slim.prune.sweep import choose_optimal, format_csv, format_markdown, plot_sweep, setting_label, sweep_table


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
    choice = choose_optimal(rows, 0.8)
    table = sweep_table(rows, reference, choice)
    assert "| unpruned | 0.8000 | 0.8000 | 0.8000 | +0.0000 | 1,000 | 0.10 | 1.00 | 4.00 | 10.000 |" in format_markdown(table)
    parsed = list(csv.reader(io.StringIO(format_csv(table))))
    assert float(parsed[1][parsed[0].index("OpenVINO (ms)")]) == 4.0
    with_latency = plot_sweep(rows, tmp_path / "a.png", reference, choice)
    without = plot_sweep([{k: v for k, v in r.items() if k != "ov_latency_ms"} for r in rows], tmp_path / "b.png", reference, choice)
    assert _png_width(with_latency) > 1.4 * _png_width(without)  # a third panel


def test_setting_labels_name_the_budget():
    assert setting_label({"latency_budget": 0.5, "latency_budget_ms": 2.0}, "latency") == "latency latency_budget=0.5"
    assert setting_label({"latency_budget": None, "latency_budget_ms": 2.5}, "latency") == "latency latency_budget_ms=2.5"
    assert setting_label({"global_percent": 0.8}, "channel") == "channel global_percent=0.8"
