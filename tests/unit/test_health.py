"""device/health.py: what starves the service watchdog, and what must not."""
from __future__ import annotations

from types import SimpleNamespace

from device.health import WriterProgress, pipeline_problem
from device.states import State

S = 1_000_000


class Writer:
    def __init__(self) -> None:
        self.count, self.busy = 0, 5 * S

    def alive(self) -> bool:
        return True

    def progress(self) -> int:
        return self.count

    def busy_since(self):
        return self.busy


def firmware(writer, commit_age_us):
    monitor = SimpleNamespace(last_tick_us=None, commit_age_us=lambda now_us: commit_age_us)
    return SimpleNamespace(failure=None, monitor=monitor, writer=writer,
                           recorder=SimpleNamespace(state=State.RECORDING),
                           board=SimpleNamespace(camera=SimpleNamespace(stuck=lambda: False)))


def _watch(fw, writer, seconds: int, advancing: bool) -> list:
    progress, problems = WriterProgress(), []
    for t in range(seconds * 2):
        now_us = t * S // 2
        fw.monitor.last_tick_us = now_us
        if advancing:
            writer.count += 3
        problems.append(pipeline_problem(fw, now_us, progress.stuck_us(writer, now_us)))
    return problems


def test_a_slow_card_that_keeps_finishing_items_is_not_a_wedged_writer():
    writer = Writer()
    assert set(_watch(firmware(writer, 30 * S), writer, 30, advancing=True)) == {None}


def test_a_writer_stuck_on_one_item_with_no_commit_for_10_s_starves_it():
    writer = Writer()
    problems = _watch(firmware(writer, 30 * S), writer, 30, advancing=False)
    first = next(i for i, p in enumerate(problems) if p)
    assert 20 <= first <= 22 and "stuck on one item" in problems[first]   # ~10 s after it stopped


def test_an_idle_writer_is_not_stuck():
    writer = Writer()
    writer.busy = None   # waiting for work (buffering)
    assert set(_watch(firmware(writer, None), writer, 30, advancing=False)) == {None}
