"""The recorder state table (DESIGN §3): complete, reachable, no traps, and the ACT-1/2 rules."""
import itertools

import pytest

from device.states import (
    FINAL_STATES,
    INITIAL_STATE,
    TRANSITIONS,
    Action,
    Event,
    State,
    TransitionTableError,
    check_table,
    step,
)

B, R, SD = State.BUFFERING, State.RECORDING, State.SHUTDOWN


def test_shipped_table_passes_its_own_check():
    check_table()


def test_every_state_event_pair_has_exactly_one_entry():
    assert set(TRANSITIONS) == set(itertools.product(State, Event))


@pytest.mark.parametrize("pair", sorted(TRANSITIONS, key=lambda p: (p[0].name, p[1].name)), ids=str)
def test_deleting_any_entry_is_caught(pair):
    mutated = dict(TRANSITIONS)
    del mutated[pair]
    with pytest.raises(TransitionTableError, match=f"missing entry for \\({pair[0].name}, {pair[1].name}\\)"):
        check_table(mutated)


def test_entry_with_wrong_types_is_caught():
    mutated = dict(TRANSITIONS)
    mutated[(B, Event.START_BUTTON)] = (R, "start")
    with pytest.raises(TransitionTableError, match="is not \\(State, Action\\)"):
        check_table(mutated)


def test_unknown_key_is_caught():
    mutated = dict(TRANSITIONS)
    mutated[("BUFFERING", Event.START_BUTTON)] = (R, Action.START_EVENT)
    with pytest.raises(TransitionTableError, match="unknown pair"):
        check_table(mutated)


def test_unreachable_state_is_caught():
    # Nothing leads to RECORDING any more.
    mutated = dict(TRANSITIONS)
    mutated[(B, Event.START_BUTTON)] = (B, Action.NONE)
    mutated[(B, Event.TRIGGER_START)] = (B, Action.NONE)
    with pytest.raises(TransitionTableError, match="RECORDING is unreachable"):
        check_table(mutated)


def test_dead_end_state_is_caught():
    # RECORDING can no longer be left: a trap for the wearer and the battery.
    mutated = {key: ((R, Action.NONE) if key[0] is R else value) for key, value in TRANSITIONS.items()}
    with pytest.raises(TransitionTableError, match="RECORDING cannot reach a final state"):
        check_table(mutated)


def test_final_state_that_leaves_is_caught():
    mutated = dict(TRANSITIONS)
    mutated[(SD, Event.START_BUTTON)] = (R, Action.START_EVENT)
    with pytest.raises(TransitionTableError, match="final state SHUTDOWN leaves"):
        check_table(mutated)


def test_initial_state_must_not_be_final_and_a_final_state_must_exist():
    with pytest.raises(TransitionTableError, match="is final"):
        check_table(TRANSITIONS, initial_state=SD)
    with pytest.raises(TransitionTableError, match="no final state"):
        check_table(TRANSITIONS, final_states=())


def test_initial_and_final_states():
    assert INITIAL_STATE is B
    assert FINAL_STATES == {SD}


@pytest.mark.parametrize(
    "state, event, expected",
    [
        # ACT-1: double press starts, hold stops, short press marks while recording.
        (B, Event.START_BUTTON, (R, Action.START_EVENT)),
        (R, Event.STOP_BUTTON, (B, Action.STOP_EVENT)),
        (R, Event.MARKER_BUTTON, (R, Action.MARKER)),
        # A second start while recording neither restarts nor splits the event.
        (R, Event.START_BUTTON, (R, Action.NONE)),
        (R, Event.TRIGGER_START, (R, Action.NONE)),
        # ACT-2: a trigger starts; TRIGGER_STOP (start-and-stop inputs only) stops.
        (B, Event.TRIGGER_START, (R, Action.START_EVENT)),
        (R, Event.TRIGGER_STOP, (B, Action.STOP_EVENT)),
        # Nothing to mark or stop while buffering.
        (B, Event.MARKER_BUTTON, (B, Action.NONE)),
        (B, Event.STOP_BUTTON, (B, Action.NONE)),
        (B, Event.TRIGGER_STOP, (B, Action.NONE)),
        # Storage failure closes the event; the camera keeps buffering.
        (R, Event.STORAGE_FAILED, (B, Action.STOP_EVENT)),
        (B, Event.STORAGE_FAILED, (B, Action.NONE)),
        # Shutdown closes a running event first.
        (R, Event.SHUTDOWN, (SD, Action.STOP_EVENT_AND_SHUTDOWN)),
        (B, Event.SHUTDOWN, (SD, Action.SHUTDOWN)),
    ],
)
def test_step(state, event, expected):
    assert step(state, event) == expected


@pytest.mark.parametrize("event", list(Event))
def test_shutdown_is_final_and_silent(event):
    assert step(SD, event) == (SD, Action.NONE)


def test_step_rejects_non_members_clearly():
    with pytest.raises(TransitionTableError, match="no transition"):
        step("RECORDING", Event.STOP_BUTTON)


def test_every_start_is_paired_with_a_stop_along_any_path():
    # Walk all event sequences up to length 5: an event is open exactly while
    # RECORDING, so START/STOP actions must alternate and match the state.
    for events in itertools.product(Event, repeat=5):
        state, open_event = INITIAL_STATE, False
        for event in events:
            state, action = step(state, event)
            if action is Action.START_EVENT:
                assert not open_event
                open_event = True
            elif action in (Action.STOP_EVENT, Action.STOP_EVENT_AND_SHUTDOWN):
                assert open_event
                open_event = False
            elif action is Action.MARKER:
                assert open_event
            assert open_event == (state is R)
