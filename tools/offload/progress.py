"""What `bwc offload` shows while it runs (docs/offload.md §8).

On a terminal: a rich progress bar per event and one for the total (bytes, rate,
ETA). With `--json`: one JSON object per line on standard output, each with a
`type` of "progress", "segment", "refused", "retry", "receipt" or "summary", for
machines. Otherwise (output to a file or a pipe): the summary only.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Callable, TextIO

PROGRESS_EVERY_S = 0.5     # at most this often per JSON progress line


class Progress:
    """The quiet form, and the interface: a line per refusal and retry, and the summary."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 monotonic_s: Callable[[], float] = time.monotonic) -> None:
        self.out, self.err, self._now = out, err, monotonic_s
        self.total_bytes = 0
        self.sent_bytes = 0
        self.events: dict[str, list[int]] = {}       # event id -> [sent, total]
        self._start_s = monotonic_s()

    # -- totals --------------------------------------------------------------------
    def plan(self, events: dict[str, int], audit_bytes: int) -> None:
        """Bytes to send per event (segments not yet held) and for the audit log."""
        for event_id, size in events.items():
            self.events.setdefault(event_id, [0, 0])[1] = size
        self.total_bytes = sum(events.values()) + audit_bytes + self.sent_bytes

    def rate_bps(self) -> float:
        elapsed = self._now() - self._start_s
        return self.sent_bytes / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate_bps()
        return max(0.0, (self.total_bytes - self.sent_bytes) / rate) if rate > 0 else None

    def sent(self, event_id: str | None, n_bytes: int) -> None:
        self.sent_bytes += n_bytes
        if event_id is not None:
            self.events.setdefault(event_id, [0, 0])[0] += n_bytes

    # -- what happened ----------------------------------------------------------------
    def segment(self, seq: int, name: str, event_id: str, status: str, size: int) -> None:
        pass

    def refused(self, what: str, reason: str, detail: str) -> None:
        print(f"bwc offload: the intake refused {what}: {reason}" + (f" ({detail})" if detail else ""),
              file=self.err)

    def retry(self, why: str, wait_s: float) -> None:
        print(f"bwc offload: {why}; retrying in {wait_s:g} s", file=self.err)

    def receipt(self, receipt: dict, logged_entry: int | None, deleted: list[str]) -> None:
        pass

    def summary(self, summary: dict) -> None:
        print(format_summary(summary), file=self.out)

    def close(self) -> None:
        pass


class JsonProgress(Progress):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last_s: float | None = None

    def _emit(self, kind: str, **fields) -> None:
        print(json.dumps(dict(type=kind, **fields), sort_keys=True), file=self.out, flush=True)

    def sent(self, event_id: str | None, n_bytes: int) -> None:
        super().sent(event_id, n_bytes)
        now = self._now()
        if self._last_s is not None and now - self._last_s < PROGRESS_EVERY_S and self.sent_bytes < self.total_bytes:
            return
        self._last_s = now
        event = self.events.get(event_id, [0, 0]) if event_id is not None else None
        eta = self.eta_s()
        self._emit("progress", event_id=event_id, event_sent_bytes=event[0] if event else None,
                   event_bytes=event[1] if event else None, sent_bytes=self.sent_bytes,
                   total_bytes=self.total_bytes, rate_bps=round(self.rate_bps()),
                   eta_s=None if eta is None else round(eta, 1))

    def segment(self, seq, name, event_id, status, size) -> None:
        self._emit("segment", seq=seq, name=name, event_id=event_id, status=status, bytes=size)

    def refused(self, what, reason, detail) -> None:
        self._emit("refused", what=what, reason=reason, detail=detail)

    def retry(self, why, wait_s) -> None:
        self._emit("retry", why=why, wait_s=wait_s)

    def receipt(self, receipt, logged_entry, deleted) -> None:
        self._emit("receipt", receipt=receipt, logged_entry=logged_entry, deleted=deleted)

    def summary(self, summary: dict) -> None:
        self._emit("summary", **summary)


class RichProgress(Progress):
    """Bars on a terminal: one per event still to send, and the total."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress as Bars, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        self._console = Console(file=self.out)
        self._bars = Bars(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=self._console, transient=False)
        self._total_task: int | None = None
        self._tasks: dict[str, int] = {}           # event id -> its bar
        self._bars.start()

    def plan(self, events, audit_bytes) -> None:
        super().plan(events, audit_bytes)
        if self._total_task is None:
            self._total_task = self._bars.add_task("total", total=self.total_bytes)
        self._bars.update(self._total_task, total=self.total_bytes)
        for event_id, (sent, total) in self.events.items():
            if event_id not in self._tasks and total:
                self._tasks[event_id] = self._bars.add_task(f"event {event_id[:8]}", total=total, completed=sent)

    def sent(self, event_id, n_bytes) -> None:
        super().sent(event_id, n_bytes)
        if self._total_task is not None:
            self._bars.update(self._total_task, completed=self.sent_bytes)
        if event_id in self._tasks:
            self._bars.update(self._tasks[event_id], completed=self.events[event_id][0])

    def refused(self, what, reason, detail) -> None:
        self._console.print(f"refused {what}: {reason}" + (f" ({detail})" if detail else ""))

    def retry(self, why, wait_s) -> None:
        self._console.print(f"{why}; retrying in {wait_s:g} s")

    def summary(self, summary: dict) -> None:
        self.close()
        self._console.print(format_summary(summary), highlight=False)

    def close(self) -> None:
        self._bars.stop()


def make_progress(json_lines: bool, out: TextIO = sys.stdout) -> Progress:
    if json_lines:
        return JsonProgress(out)
    if out.isatty():
        return RichProgress(out)
    return Progress(out)


def _names(names: list, limit: int = 6) -> str:
    shown = ", ".join(str(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def format_summary(s: dict) -> str:
    lines = [f"offload to {s['intake']}: {s['outcome']}"]
    lines.append(f"  accepted: {len(s['accepted'])} segment(s)" + (f" ({_names(s['accepted'])})" if s['accepted']
                                                                   else "")
                 + f", {s['audit_bytes']} audit byte(s); already held: {len(s['already_held'])} segment(s)")
    for item in s["refused"]:
        lines.append(f"  refused: {item['what']}: {item['reason']}" + (f" ({item['detail']})" if item["detail"]
                                                                       else ""))
    if s["receipt"] is not None:
        r = s["receipt"]
        lines.append(f"  receipt: segments to {r['segments']['seq'] if r['segments'] else 'none'}, audit entries "
                     f"to {r['audit']['n'] if r['audit'] else 'none'}"
                     + (f"; logged in audit entry {s['receipt_entry']}" if s["receipt_entry"] is not None else
                        "; nothing new to release"))
    lines.append(f"  deleted from the card: {len(s['deleted'])} file(s)" + (f" ({_names(s['deleted'])})"
                                                                           if s['deleted'] else ""))
    lines.append(f"  left on the card: {len(s['left_on_card'])} file(s)" + (f" ({_names(s['left_on_card'])})"
                                                                          if s['left_on_card'] else ""))
    for item in s.get("not_sent", []):
        lines.append(f"  not sent: {item['what']}: {item['why']}")
    if s.get("network_error"):
        lines.append(f"  network: {s['network_error']}; run bwc offload again to resume")
    return "\n".join(lines)
