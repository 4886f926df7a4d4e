"""What offload sends and in which order (docs/offload.md §8): marked events first, then
the others, oldest event first, by seq within an event; only closed segments; nothing
the intake already holds. Audit bytes go whole lines only, from what the intake holds."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from device.chainstate import ChainState
from device.offload.plan import CardSegment, audit_batches, plan_segments
from device.offload.protocol import AUDIT_BATCH_MAX_BYTES


@st.composite
def layouts(draw):
    """A card: events of 1–4 segments in seq order (some seqs skipped, as after a
    power cut), some events marked, some segments held by the intake, the newest
    maybe cut short."""
    n_events = draw(st.integers(1, 6))
    segments, seq = [], 1
    for e in range(n_events):
        for _ in range(draw(st.integers(1, 4))):
            seq += draw(st.integers(0, 1))
            segments.append(CardSegment(seq, f"seg-{seq:010d}.bwc", "", 100, f"{seq:064x}", f"event{e}",
                                        draw(st.booleans()) or draw(st.booleans())))
            seq += 1
    marked = {f"event{e}" for e in range(n_events) if draw(st.booleans())}
    held = [s for s in segments if draw(st.integers(0, 3)) == 0]
    state = {"segments": [{"seq": s.seq, "sha256": s.sha256} for s in held]}
    return segments, marked, state


@settings(max_examples=100, deadline=None)
@given(layouts())
def test_marked_events_go_first_then_oldest_first_by_seq_and_only_closed_unheld_segments(layout):
    segments, marked, state = layout
    plan = plan_segments(segments, marked, state, None)
    held = {s["seq"] for s in state["segments"]}
    newest = max(s.seq for s in segments)
    sent = plan.segments
    # Exactly the closed segments not held, each once.
    expect = {s.seq for s in segments if s.seq not in held and (s.final or s.seq < newest)}
    assert len(sent) == len(expect)
    assert {s.seq for s in sent} == expect
    assert {s.seq for s in plan.held} == held
    assert {s.seq for s in plan.open} == {s.seq for s in segments if s.seq not in held} - expect
    # Every segment of a marked event comes before any of an unmarked one.
    flags = [s.event_id in marked for s in sent]
    assert flags == sorted(flags, reverse=True)
    # Within each group, events by their first segment (oldest first), and seqs ascending.
    first = {}
    for s in segments:
        first.setdefault(s.event_id, s.seq)
    for group in (True, False):
        part = [s for s in sent if (s.event_id in marked) == group]
        keys = [(first[s.event_id], s.seq) for s in part]
        assert keys == sorted(keys)


def test_a_cut_newest_segment_is_sent_once_its_boot_has_recovered_it():
    cut = CardSegment(5, "seg-0000000005.bwc", "", 10, "5" * 64, "e", final=False)
    state = {"segments": []}
    open_chain = ChainState(next_seq=6, open_seq=5, running=True)
    assert plan_segments([cut], set(), state, open_chain).open == [cut]
    pending = ChainState(next_seq=6, running=True, pending_recovery={"seq": 5, "found": "cut"})
    assert plan_segments([cut], set(), state, pending).open == [cut]
    recovered = ChainState(next_seq=6, running=False)
    assert plan_segments([cut], set(), state, recovered).segments == [cut]


def test_a_segment_held_with_another_hash_is_sent_so_the_intake_names_the_conflict():
    seg = CardSegment(1, "seg-0000000001.bwc", "", 10, "1" * 64, "e", final=True)
    plan = plan_segments([seg], set(), {"segments": [{"seq": 1, "sha256": "2" * 64}]}, None)
    assert plan.segments == [seg]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=200).map(lambda b: b.replace(b"\n", b"x")), max_size=30),
       st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), st.data())
def test_audit_batches_are_whole_lines_from_the_held_offset_and_cover_the_rest(lines, tail, data):
    whole = b"".join(line + b"\n" for line in lines)
    boundaries = [0] + [i + 1 for i, c in enumerate(whole) if c == 0x0A]
    held = data.draw(st.sampled_from(boundaries))
    batches = audit_batches(3, whole + tail, held)
    assert b"".join(b.data for b in batches) == whole[held:]      # never the torn tail
    pos = held
    for b in batches:
        assert b.file == 3 and b.offset == pos and b.data.endswith(b"\n") and len(b.data) <= AUDIT_BATCH_MAX_BYTES
        pos += len(b.data)


def test_audit_batches_split_a_large_file_at_line_ends_under_the_limit():
    line = b"x" * 999 + b"\n"
    data = line * 3000       # about 3 MB
    batches = audit_batches(1, data, 0)
    assert len(batches) == 3 and all(len(b.data) <= AUDIT_BATCH_MAX_BYTES for b in batches)
    assert b"".join(b.data for b in batches) == data
