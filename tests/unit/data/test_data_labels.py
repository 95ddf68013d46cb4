"""Tests of yolo_slim.data.labels: every bad-label case is counted, repaired or dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from yolo_slim.data.labels import ISSUE_KINDS, DataReport, LabelIssue, read_labels
from yolo_slim.errors import DataError


def _labels(tmp_path: Path, text: str, num_classes: int = 2) -> tuple[np.ndarray, list[LabelIssue]]:
    path = tmp_path / "x.txt"
    path.write_text(text, encoding="utf-8")
    return read_labels(path, num_classes)


def test_good_file(tmp_path: Path) -> None:
    labels, issues = _labels(tmp_path, "0 0.5 0.5 0.2 0.4\n\n1 0.25 0.75 0.1 0.1\n")
    assert issues == []
    assert labels.dtype == np.float32
    np.testing.assert_allclose(labels, [[0, 0.5, 0.5, 0.2, 0.4], [1, 0.25, 0.75, 0.1, 0.1]], rtol=1e-6)


def test_empty_file_is_a_legal_background(tmp_path: Path) -> None:
    labels, issues = _labels(tmp_path, "")
    assert labels.shape == (0, 5)
    assert issues == []


def test_missing_file(tmp_path: Path) -> None:
    labels, issues = read_labels(tmp_path / "none.txt", 2)
    assert labels.shape == (0, 5)
    assert [i.kind for i in issues] == ["no_label_file"]
    assert issues[0].line is None


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("0 0.5 0.5 0.2", "bad_field_count"),
        ("0 0.5 0.5 0.2 0.2 0.9", "bad_field_count"),
        ("0 0.5 0.5 abc 0.2", "not_a_number"),
        ("0 0.5 nan 0.2 0.2", "not_a_number"),
        ("2 0.5 0.5 0.2 0.2", "bad_class"),
        ("-1 0.5 0.5 0.2 0.2", "bad_class"),
        ("0.5 0.5 0.5 0.2 0.2", "bad_class"),
        ("0 0.5 0.5 0 0.2", "coords_outside"),
        ("0 1.2 0.5 0.2 0.2", "coords_outside"),
        ("0 0.05 0.5 0.2 0.2", "coords_outside"),  # left edge at -0.05
    ],
)
def test_bad_line_is_dropped_and_reported(tmp_path: Path, line: str, kind: str) -> None:
    labels, issues = _labels(tmp_path, f"1 0.5 0.5 0.1 0.1\n{line}\n")
    assert len(labels) == 1  # the good line survives
    assert [(i.kind, i.line) for i in issues] == [(kind, 2)]
    assert str(issues[0]).startswith(f"{tmp_path / 'x.txt'}:2: ")


def test_slightly_outside_is_clipped(tmp_path: Path) -> None:
    labels, issues = _labels(tmp_path, "0 0.094 0.5 0.2 0.2\n")  # left edge at -0.006
    assert [i.kind for i in issues] == ["coords_clipped"]
    x1 = labels[0, 1] - labels[0, 3] / 2
    x2 = labels[0, 1] + labels[0, 3] / 2
    assert x1 == pytest.approx(0.0, abs=1e-6)
    assert x2 == pytest.approx(0.194, abs=1e-6)


def test_decimal_rounding_is_not_an_issue(tmp_path: Path) -> None:
    labels, issues = _labels(tmp_path, "0 0.100001 0.5 0.200003 0.2\n")
    assert issues == []
    assert labels[0, 1] - labels[0, 3] / 2 >= 0


def test_duplicates_removed(tmp_path: Path) -> None:
    labels, issues = _labels(tmp_path, "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.5 0.50 0.2000 0.2\n")
    assert len(labels) == 2  # same box with another class is not a duplicate
    assert [(i.kind, i.line) for i in issues] == [("duplicate_box", 3)]
    assert "same box as line 1" in issues[0].message


def test_report_counts_examples_and_summary(tmp_path: Path) -> None:
    report = DataReport(name="train", max_examples=2)
    for i in range(5):
        report.add(LabelIssue("bad_class", tmp_path / f"f{i}.txt", i + 1, "class id 7"))
    report.add(LabelIssue("no_label_file", tmp_path / "g.txt", None, "label file not found"))
    report.images, report.images_kept, report.boxes = 6, 6, 10
    assert report.counts == {"bad_class": 5, "no_label_file": 1}
    assert report.total_issues == 6
    text = report.summary()
    assert "train: 6/6 images used, 10 boxes, 6 issue(s)" in text
    assert ISSUE_KINDS["bad_class"] in text
    assert f"{tmp_path / 'f0.txt'}:1: class id 7" in text
    assert f"{tmp_path / 'f1.txt'}:2" in text
    assert "f2.txt" not in text  # only the first examples are listed
    assert "... and 3 more" in text
    assert f"{tmp_path / 'g.txt'}: label file not found" in text


def test_report_merge(tmp_path: Path) -> None:
    a, b = DataReport(max_examples=1), DataReport()
    a.add(LabelIssue("duplicate_box", tmp_path / "a.txt", 3, "dup"))
    b.add(LabelIssue("duplicate_box", tmp_path / "b.txt", 4, "dup"))
    b.images = 2
    a.merge(b)
    assert a.counts["duplicate_box"] == 2
    assert len(a.examples["duplicate_box"]) == 1
    assert a.images == 2


def test_strict_raises_with_file_and_line(tmp_path: Path) -> None:
    report = DataReport()
    report.raise_if_strict(True)  # clean: nothing happens
    report.add(LabelIssue("bad_field_count", tmp_path / "x.txt", 7, "expected 5 fields"))
    report.raise_if_strict(False)  # not strict: nothing happens
    with pytest.raises(DataError, match=r"(?s)strict data check failed with 1 issue.*x\.txt:7: expected 5 fields"):
        report.raise_if_strict(True)


def test_report_logs_warning_once_per_call(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    report = DataReport(name="val")
    report.add(LabelIssue("coords_outside", tmp_path / "x.txt", 2, "box outside"))
    with caplog.at_level("INFO"):
        report.log()
    assert len(caplog.records) == 1
    assert caplog.records[0].levelname == "WARNING"
    assert "x.txt:2: box outside" in caplog.text
