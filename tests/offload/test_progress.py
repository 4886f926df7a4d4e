"""What offload shows (docs/offload.md §8): JSON lines with --json, bars with bytes, rate and
ETA on a terminal, and a summary that names what happened."""
from __future__ import annotations

import io
import json

from tools.offload.progress import JsonProgress, Progress, RichProgress, format_summary, make_progress


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


SUMMARY = {"intake": "http://127.0.0.1:1", "outcome": "done", "exit_code": 0, "accepted": [4, 5, 1],
           "already_held": [2], "refused": [{"what": "seg-0000000003.bwc", "reason": "chain_break", "detail": "x"}],
           "audit_bytes": 120, "receipt": {"segments": {"seq": 5, "hash": "a" * 64, "chunks": 3},
                                           "audit": {"n": 9, "hash": "b" * 64}},
           "receipt_entry": 10, "deleted": ["seg-0000000001.bwc"], "left_on_card": ["audit-0000000002.log"],
           "retries": 0, "body_bytes_sent": 1, "wasted_bytes": [], "network_error": None,
           "not_sent": [{"what": "seg-0000000009.bwc", "why": "not closed"}]}


def test_json_lines_carry_progress_with_rate_and_eta_then_the_summary():
    out, clock = io.StringIO(), Clock()
    progress = JsonProgress(out, monotonic_s=clock)
    progress.plan({"ev1": 1000, "ev2": 1000}, 100)
    clock.now_s = 1.0
    progress.sent("ev1", 700)
    progress.segment(4, "seg-0000000004.bwc", "ev1", "accepted", 1000)
    progress.refused("seg-0000000003.bwc", "chain_break", "detail")
    progress.summary(SUMMARY)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["progress", "segment", "refused", "summary"]
    first = lines[0]
    assert (first["sent_bytes"], first["total_bytes"], first["event_sent_bytes"], first["event_bytes"]) == \
        (700, 2100, 700, 1000)
    assert first["rate_bps"] == 700 and first["eta_s"] == 2.0
    assert lines[-1]["accepted"] == [4, 5, 1]


def test_a_terminal_gets_bars_with_bytes_rate_and_eta():
    out = Terminal()
    progress = make_progress(False, out)
    assert isinstance(progress, RichProgress)
    progress.plan({"abcdef0123": 2_000_000}, 500)
    progress.sent(None, 500)                  # the audit log: the total bar only
    progress.sent("abcdef0123", 1_000_000)
    progress.summary(SUMMARY)
    text = out.getvalue()
    assert "event abcdef01" in text and "total" in text and "MB" in text
    assert "accepted: 3 segment(s)" in text


def test_a_pipe_gets_the_summary_only():
    out = io.StringIO()
    progress = make_progress(False, out)
    assert type(progress) is Progress
    progress.sent(None, 10)
    progress.summary(SUMMARY)
    assert out.getvalue() == format_summary(SUMMARY) + "\n"
    assert "refused: seg-0000000003.bwc: chain_break (x)" in out.getvalue()
    assert "logged in audit entry 10" in out.getvalue()
    assert "not sent: seg-0000000009.bwc: not closed" in out.getvalue()
