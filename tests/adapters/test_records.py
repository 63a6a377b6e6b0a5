"""The release record's JSON: what one run writes, another run and the status view read back."""

from __future__ import annotations

import json

from components.adapters.records import (
    HISTORY_LINE_CHARS,
    HISTORY_LINES,
    CheckValue,
    HistoryEntry,
    Owner,
    RecordPhase,
    ReleaseRecord,
)


def full_record() -> ReleaseRecord:
    return ReleaseRecord(
        "3f2a9c1e",
        RecordPhase.PROGRESSING,
        step=2,
        weight=30,
        failed_checks=1,
        heartbeat=1_700_000_000.5,
        owner=Owner("ci-runner-7", 4242),
        last_check={
            "request-success-rate": CheckValue(99.5, ">= 99", True),
            "request-duration": CheckValue(None, "<= 500", False),
        },
        threshold=5,
        deadline=1_700_000_600.0,
        interval_seconds=60.0,
        history=(HistoryEntry(1_700_000_000.0, "weight 30%: request-success-rate 99.5 -> pass"),),
    )


def test_every_field_survives_the_round_trip() -> None:
    record = full_record()
    assert ReleaseRecord.from_json(record.to_json()) == record


def test_the_status_fields_are_camel_case_in_the_stored_json() -> None:
    stored = json.loads(full_record().to_json())
    assert stored["lastCheck"]["request-success-rate"] == {
        "value": 99.5,
        "bounds": ">= 99",
        "passed": True,
    }
    assert (stored["intervalSeconds"], stored["threshold"]) == (60.0, 5)
    assert stored["history"] == [
        {"at": 1_700_000_000.0, "text": "weight 30%: request-success-rate 99.5 -> pass"}
    ]


def test_a_record_of_an_older_version_has_none_of_the_status_fields() -> None:
    old = json.dumps({"revision": "abc", "phase": "Progressing", "step": 1, "weight": 20})
    record = ReleaseRecord.from_json(old)
    assert (record.last_check, record.threshold, record.deadline) == ({}, None, None)
    assert (record.interval_seconds, record.history) == (None, ())


def test_partial_status_fields_read_as_far_as_they_go() -> None:
    partial = json.dumps(
        {
            "revision": "abc",
            "phase": "Progressing",
            "lastCheck": {"request-success-rate": {"value": 99}, "broken": "99"},
            "history": [{"text": "started"}, "not an entry"],
        }
    )
    record = ReleaseRecord.from_json(partial)
    assert record.last_check == {"request-success-rate": CheckValue(99.0, "", False)}
    assert record.history == (HistoryEntry(0.0, "started"),)


def test_the_history_keeps_the_last_lines_each_cut_to_size() -> None:
    record = ReleaseRecord("abc", RecordPhase.PROGRESSING)
    for second in range(HISTORY_LINES + 5):
        record = record.with_event(float(second), f"event {second}")
    assert len(record.history) == HISTORY_LINES
    assert record.history[0] == HistoryEntry(5.0, "event 5")
    assert record.history[-1].text == f"event {HISTORY_LINES + 4}"
    long = record.with_event(99.0, "x" * 1000).history[-1].text
    assert len(long) == HISTORY_LINE_CHARS and long.endswith("\u2026")


def test_a_full_record_stays_a_few_kib() -> None:
    record = full_record()
    for second in range(HISTORY_LINES):
        record = record.with_event(float(second), "y" * 1000)
    assert len(record.to_json().encode()) < 5 * 1024


def test_a_record_is_abandoned_once_its_heartbeat_is_stale() -> None:
    record = ReleaseRecord("abc", RecordPhase.PROGRESSING, heartbeat=1000.0)
    assert not record.abandoned(1029.0, stale_after=30.0)
    assert record.abandoned(1030.0, stale_after=30.0)
