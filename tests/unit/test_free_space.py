"""The writer's free-space reading (device/storage_reserve.py FreeSpace): what the reserve
check sees equals what the card would say, with statvfs once a checkpoint."""
from __future__ import annotations

from device.storage_reserve import FreeSpace


class Card:
    def __init__(self, free_bytes: int) -> None:
        self.free, self.reads = free_bytes, 0

    def free_bytes(self) -> int:
        self.reads += 1
        return self.free


class Segment:
    """Bytes added (offset) and how many of them are not on the card yet."""

    def __init__(self, card: Card) -> None:
        self.card, self.offset_bytes, self.unwritten_bytes = card, 0, 0

    def add(self, n: int) -> None:
        self.offset_bytes += n
        self.unwritten_bytes += n

    def write_out(self, n: int) -> None:   # the card takes n of the unwritten bytes
        self.unwritten_bytes -= n
        self.card.free -= n


def test_between_checkpoints_the_segment_own_bytes_are_counted_without_statvfs():
    card = Card(100_000_000)
    segment, space = Segment(card), FreeSpace(card)
    segment.add(3_000)                      # a checkpoint in flight in the background
    steps = [("add", 1_250_000), ("write", 2_000), ("add", 1_250_000), ("write", 1_250_000),
             ("add", 900_000), ("write", 1_000)]
    for op, n in steps:
        segment.add(n) if op == "add" else segment.write_out(n)
        assert space.after_unwritten(segment) == card.free - segment.unwritten_bytes
    assert card.reads == 1
    space.forget()
    assert space.after_unwritten(segment) == card.free - segment.unwritten_bytes and card.reads == 2


def test_another_program_s_writes_are_seen_at_the_next_checkpoint():
    card = Card(10_000_000)
    segment, space = Segment(card), FreeSpace(card)
    space.after_unwritten(segment)
    card.free -= 4_000_000                   # someone else filled the card
    assert space.after_unwritten(segment) == 10_000_000   # unseen until the next reading
    space.forget()
    assert space.after_unwritten(segment) == 6_000_000


def test_a_new_segment_is_read_afresh():
    card = Card(5_000_000)
    space = FreeSpace(card)
    space.after_unwritten(Segment(card))
    space.after_unwritten(Segment(card))
    assert card.reads == 2
