"""Sweep points judged after a short fine-tune: which ones the walk recovers, the verdicts,
the choice, the table columns and the plot."""

from __future__ import annotations

import csv
import io

from yolo_slim.prune.accept import Acceptance
from yolo_slim.prune.recovery import RECOVERED, SKIPPED, judged, recover_rejected, verdict
from yolo_slim.prune.sweep import choose_optimal, format_csv, format_markdown, plot_sweep, sweep_table


def _row(setting: str, bflops: float, map50: float, recall: float = 0.7) -> dict:
    return {"setting": setting, "bflops": bflops, "params": int(bflops * 1000), "mAP50": map50, "recall": recall, "precision": 0.3}


def _layer_sweep() -> tuple[dict, list[dict]]:
    """Shaped like the aerial tiles' layer sweep (measured Dec 4): 4 units kept the mAP as cut,
    6 and 8 lost 3 and 19 points, 10 lost 28."""
    reference = _row("unpruned", 0.148, 0.623, 0.744)
    rows = [_row("shortcuts=4", 0.148, 0.614, 0.744), _row("shortcuts=6", 0.1479, 0.595, 0.732),
            _row("shortcuts=8", 0.127, 0.438, 0.659), _row("shortcuts=10", 0.110, 0.341, 0.606),
            _row("shortcuts=13", 0.078, 0.063, 0.281)]
    return reference, rows


# what 200 steps of fine-tuning reached (stand-in numbers in the measured range)
AFTER = {None: (0.690, 0.80), "shortcuts=4": (0.600, 0.80), "shortcuts=6": (0.688, 0.80), "shortcuts=8": (0.684, 0.79), "shortcuts=10": (0.624, 0.74),
         "shortcuts=13": (0.40, 0.5)}


def _recover(calls: list):
    def recover(row):
        key = None if row is None else row["setting"]
        calls.append(key)
        m, r = AFTER[key]
        return {"mAP50": m, "recall": r, "precision": 0.3, "steps": 200}
    return recover


def test_the_search_recovers_the_first_rejected_point_then_bisects_the_stronger_ones():
    reference, rows = _layer_sweep()
    calls: list = []
    done = recover_rejected(rows, reference, Acceptance(tolerance=0.01, keep_map=0.95), _recover(calls))
    # 4 is accepted as cut; of 6, 8, 10, 13 (rejected as cut) the unpruned model first, then 6 (accepted
    # after recovery), then the middle of 8, 10, 13: 10 (rejected), then 8 (accepted): 13 never runs
    assert calls == [None, "shortcuts=6", "shortcuts=10", "shortcuts=8"] and done == 3
    assert RECOVERED not in rows[0] and RECOVERED not in rows[-1]
    assert not any(SKIPPED in r for r in rows)
    assert reference[RECOVERED]["mAP50"] == 0.690
    choice = choose_optimal(rows, reference, Acceptance(tolerance=0.01, keep_map=0.95))
    assert choice.row["setting"] == "shortcuts=8"
    assert "0.6840 vs unpruned 0.6900 after 200 steps of fine-tuning of both, 0.4380 vs 0.6230 as cut" in choice.reason


def test_without_recovery_the_same_sweep_keeps_the_weaker_point():
    reference, rows = _layer_sweep()
    assert choose_optimal(rows, reference, Acceptance(tolerance=0.01, keep_map=0.95)).row["setting"] == "shortcuts=4"


def test_nothing_is_recovered_when_every_point_is_accepted_or_the_model_learned_nothing():
    reference, rows = _layer_sweep()
    calls: list = []
    assert recover_rejected(rows, reference, Acceptance(tolerance=1.0, keep_map=0.0, keep_recall=0.0), _recover(calls)) == 0
    assert calls == [] and RECOVERED not in reference
    dead = _row("unpruned", 0.148, 0.05)
    assert recover_rejected(rows, dead, Acceptance(), _recover(calls)) == 0 and calls == []


def test_a_failed_job_row_is_skipped_and_recovered_rows_are_not_run_again():
    reference, rows = _layer_sweep()
    failed = {"setting": "shortcuts=9", "bflops": 0.12, "params": 1}  # no mAP50: its job failed
    rows.append(failed)
    calls: list = []
    recover_rejected(rows, reference, Acceptance(), _recover(calls))
    assert "shortcuts=9" not in calls
    again: list = []
    recover_rejected(rows, reference, Acceptance(), _recover(again))  # a rerun over the same rows
    assert again == []


def test_verdicts_and_table_show_both_judgements():
    reference, rows = _layer_sweep()
    acceptance = Acceptance(tolerance=0.01, keep_map=0.95)
    recover_rejected(rows, reference, acceptance, _recover([]))
    by = {r["setting"]: r for r in rows}
    assert judged(by["shortcuts=4"], reference) == (by["shortcuts=4"], reference)  # accepted as cut: judged as cut
    assert verdict(acceptance, by["shortcuts=8"], reference) == "ok after 200 steps of fine-tuning (as cut: mAP 0.438 < 0.623 - 0.01)"
    assert verdict(acceptance, by["shortcuts=10"], reference).startswith("mAP 0.624 < 0.690 - 0.01 after 200 steps")
    table = sweep_table(rows, reference, choose_optimal(rows, reference, acceptance))
    md = format_markdown(table)
    assert "| R (fine-tuned) | mAP@0.5 (fine-tuned) | accepted? |" in md
    header = next(csv.reader(io.StringIO(format_csv(table))))
    assert header[-3:] == ["R (fine-tuned)", "mAP@0.5 (fine-tuned)", "accepted?"]
    lines = {line["setting"]: line for line in table}
    assert lines["unpruned"]["recovered_mAP50"] == 0.690 and lines["shortcuts=4"]["recovered_mAP50"] is None


def test_when_nothing_is_accepted_the_point_nearest_to_it_is_named():
    reference, rows = _layer_sweep()
    strict = Acceptance(tolerance=0.001, keep_map=0.999)
    calls: list = []
    recover_rejected(rows, reference, strict, _recover(calls))  # 4 (0.614 as cut), the first rejected, fails: the search stops
    assert calls == [None, "shortcuts=4"]
    by = {r["setting"]: r for r in rows}
    assert RECOVERED not in by["shortcuts=6"] and not any(SKIPPED in r for r in rows)
    # 4 after its fine-tune keeps 0.60 / 0.69 = 0.87 of its reference; 6 as cut keeps 0.595 / 0.623 = 0.955:
    # the raw mAP@0.5 of rows judged against different references would name 4 (0.614 > 0.595)
    choice = choose_optimal(rows, reference, strict)
    assert choice.row is None and "the best, shortcuts=6, has mAP 0.595" in choice.reason


def test_the_bisection_finds_the_same_point_as_a_walk_in_fewer_recoveries():
    """Seven points all rejected as cut, shaped like the demo's channel sweep with s=0.08 over 600 steps
    (Dec 4): the five weakest recover, the strongest does not. A walk would fine-tune all seven."""
    reference = _row("unpruned", 0.378, 0.496, 0.62)
    percents = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
    rows = [_row(f"p={p}", 0.38 * (1 - p), 0.48 if p < 0.9 else 0.117) for p in percents]
    after = {None: 0.441, **{f"p={p}": (0.47 if p < 0.9 else 0.40) for p in percents}}
    calls: list = []

    def recover(row):
        key = None if row is None else row["setting"]
        calls.append(key)
        return {"mAP50": after[key], "recall": 0.68, "precision": 0.3, "steps": 200}

    acceptance = Acceptance(tolerance=0.01, keep_map=0.95)
    assert recover_rejected(rows, reference, acceptance, recover) == 4
    assert calls == [None, "p=0.5", "p=0.75", "p=0.85", "p=0.9"]
    assert choose_optimal(rows, reference, acceptance).row["setting"] == "p=0.85"
    assert [r.get(SKIPPED) for r in rows] == [None, "p=0.85", "p=0.85", None, "p=0.85", None, None]
    skipped = sweep_table(rows, reference, choose_optimal(rows, reference, acceptance))[2]
    assert skipped["setting"] == "p=0.6" and skipped["verdict"] == (
        "mAP 0.480 < 0.496 - 0.01; not fine-tuned: the stronger p=0.85 passed after fine-tuning")


def test_a_first_rejected_point_that_fails_after_recovery_ends_the_search():
    reference = _row("unpruned", 0.378, 0.496, 0.62)
    rows = [_row(f"p={p}", 0.38 * (1 - p), 0.3) for p in (0.5, 0.6, 0.7)]
    calls: list = []

    def recover(row):
        calls.append(None if row is None else row["setting"])
        return {"mAP50": 0.30 if row else 0.5, "recall": 0.6, "precision": 0.3, "steps": 200}

    assert recover_rejected(rows, reference, Acceptance(), recover) == 1 and calls == [None, "p=0.5"]


def test_a_sweep_without_recovery_has_no_fine_tuned_columns(tmp_path):
    reference, rows = _layer_sweep()
    table = sweep_table(rows, reference, choose_optimal(rows, reference))
    assert "fine-tuned" not in format_markdown(table) and "fine-tuned" not in format_csv(table)
    recover_rejected(rows, reference, Acceptance(), _recover([]))
    assert plot_sweep(rows, tmp_path / "sweep.png", reference, choose_optimal(rows, reference)).stat().st_size > 0
