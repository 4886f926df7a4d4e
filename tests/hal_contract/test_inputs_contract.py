"""Inputs: what the firmware's gesture and trigger logic relies on (ACT-1, ACT-2)."""
from __future__ import annotations

import pytest

from backends import INPUT_NAMES, TRIGGER
from hal.inputs import RECORD_BUTTON


def record_edges(rig) -> list[tuple[str, bool, int]]:
    edges: list[tuple[str, bool, int]] = []
    rig.inputs.subscribe(lambda name, active, timestamp_us: edges.append((name, active, timestamp_us)))
    return edges


def test_names_start_with_the_record_button_and_all_start_inactive(inputs_rig):
    assert inputs_rig.inputs.names == INPUT_NAMES
    assert inputs_rig.inputs.names[0] == RECORD_BUTTON
    assert not any(inputs_rig.inputs.is_active(name) for name in INPUT_NAMES)


def test_is_active_follows_the_line(inputs_rig):
    inputs_rig.drive(RECORD_BUTTON, True)
    assert inputs_rig.inputs.is_active(RECORD_BUTTON)
    assert not inputs_rig.inputs.is_active(TRIGGER)
    inputs_rig.drive(RECORD_BUTTON, False)
    assert not inputs_rig.inputs.is_active(RECORD_BUTTON)


def test_an_unknown_name_is_refused_naming_the_inputs_there_are(inputs_rig):
    with pytest.raises(KeyError, match=r"no input named 'siren'.*record, holster"):
        inputs_rig.inputs.is_active("siren")


def test_edges_carry_name_level_and_the_board_clocks_time(inputs_rig):
    rig = inputs_rig
    edges = record_edges(rig)
    press_us = rig.clock.monotonic_us()
    rig.drive(RECORD_BUTTON, True)
    rig.clock.advance(3_000_000)          # a 3 s hold: the stop gesture
    rig.drive(RECORD_BUTTON, False)
    rig.clock.advance(250_000)
    rig.drive(TRIGGER, True)
    assert edges == [(RECORD_BUTTON, True, press_us), (RECORD_BUTTON, False, press_us + 3_000_000),
                     (TRIGGER, True, press_us + 3_250_000)]


def test_timestamps_never_go_back_across_inputs(inputs_rig):
    rig = inputs_rig
    edges = record_edges(rig)
    for step in range(6):
        rig.drive(RECORD_BUTTON if step % 2 else TRIGGER, True)
        rig.clock.advance(1_000 * step)      # some edges at the same instant
        rig.drive(RECORD_BUTTON if step % 2 else TRIGGER, False)
    stamps = [t for _, _, t in edges]
    assert len(edges) == 12 and stamps == sorted(stamps)


def test_contact_bounce_is_delivered_raw(inputs_rig):
    # ACT-1: debouncing is the firmware's job, identical on every board, so no backend filters.
    rig = inputs_rig
    edges = record_edges(rig)
    for _ in range(3):
        rig.drive(RECORD_BUTTON, True)
        rig.clock.advance(2_000)              # 2 ms chatter
        rig.drive(RECORD_BUTTON, False)
    assert [active for _, active, _ in edges] == [True, False] * 3


def test_every_subscriber_hears_every_edge(inputs_rig):
    rig = inputs_rig
    first, second = record_edges(rig), record_edges(rig)
    rig.drive(TRIGGER, True)
    rig.drive(TRIGGER, False)
    assert first == second and len(first) == 2


def test_a_subscriber_may_read_is_active_from_inside_its_callback(inputs_rig):
    # The gesture code reads the level while it handles an edge.
    rig = inputs_rig
    seen = []
    rig.inputs.subscribe(lambda name, active, _t: seen.append((active, rig.inputs.is_active(name))))
    rig.drive(RECORD_BUTTON, True)
    rig.drive(RECORD_BUTTON, False)
    assert seen == [(True, True), (False, False)]


def test_close_releases_the_lines_for_a_new_instance(inputs_rig):
    rig = inputs_rig
    rig.close()
    again = rig.reopen()                      # claims the same lines (GPIOPinInUse otherwise)
    edges = record_edges(again)
    again.drive(RECORD_BUTTON, True)
    assert again.inputs.is_active(RECORD_BUTTON)
    assert edges == [(RECORD_BUTTON, True, again.clock.monotonic_us())]
