"""The recorder state machine as one explicit table (DESIGN §3).

(state, event) -> (next state, action), with an entry for every pair: an ignored
event is written down as such, never left to a default. The table is checked
when this module is imported (python-statemachine style): a missing entry, an
unreachable state or a non-final state that cannot reach a final one is a
`TransitionTableError` at import, not a surprise in the field.

The table decides only *what* happens. Who asked (button, trigger name, peer
message) and why (stop reason, ACT-4) travel with the event in the firmware,
which also applies policy before an event gets here: a trigger whose policy is
"start only" never sends TRIGGER_STOP (ACT-2); a stop that needs confirmation
(ACT-5) is sent as STOP_BUTTON only once confirmed. Group activation (ACT-3)
arrives as TRIGGER_START, with the peer as its source.

Choices worth knowing:
- START_BUTTON or TRIGGER_START while recording does nothing: the event is
  already running, and a second source must not split or restart it.
- MARKER_BUTTON while buffering does nothing: there is no event to mark.
- STOP_BUTTON and TRIGGER_STOP while buffering do nothing.
- STORAGE_FAILED while recording stops the event and falls back to buffering,
  so a double press can try again (a card may come back after a remount); the
  fault itself is alerted by the fault monitor, not by this table.
- SHUTDOWN (power off, critical battery) closes a running event first.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from enum import Enum


class State(Enum):
    BUFFERING = "buffering"  # pre-event buffer filling in RAM, nothing written
    RECORDING = "recording"  # an event is being written to storage
    SHUTDOWN = "shutdown"  # final: the firmware is stopping


class Event(Enum):
    START_BUTTON = "start_button"  # double press
    MARKER_BUTTON = "marker_button"  # short press
    STOP_BUTTON = "stop_button"  # hold (confirmed, if policy asks)
    TRIGGER_START = "trigger_start"  # trigger line or peer message
    TRIGGER_STOP = "trigger_stop"  # only for "start and stop" inputs
    STORAGE_FAILED = "storage_failed"
    SHUTDOWN = "shutdown"


class Action(Enum):
    NONE = "none"
    START_EVENT = "start_event"  # take the pre-event buffer, open the event
    STOP_EVENT = "stop_event"  # close the event, go back to buffering
    MARKER = "marker"
    STOP_EVENT_AND_SHUTDOWN = "stop_event_and_shutdown"
    SHUTDOWN = "shutdown"


class TransitionTableError(ValueError):
    """The transition table is incomplete or has states that trap or are never used."""


Transitions = Mapping[tuple[State, Event], tuple[State, Action]]

_B, _R, _S = State.BUFFERING, State.RECORDING, State.SHUTDOWN

TRANSITIONS: dict[tuple[State, Event], tuple[State, Action]] = {
    (_B, Event.START_BUTTON): (_R, Action.START_EVENT),
    (_B, Event.MARKER_BUTTON): (_B, Action.NONE),
    (_B, Event.STOP_BUTTON): (_B, Action.NONE),
    (_B, Event.TRIGGER_START): (_R, Action.START_EVENT),
    (_B, Event.TRIGGER_STOP): (_B, Action.NONE),
    (_B, Event.STORAGE_FAILED): (_B, Action.NONE),
    (_B, Event.SHUTDOWN): (_S, Action.SHUTDOWN),
    (_R, Event.START_BUTTON): (_R, Action.NONE),
    (_R, Event.MARKER_BUTTON): (_R, Action.MARKER),
    (_R, Event.STOP_BUTTON): (_B, Action.STOP_EVENT),
    (_R, Event.TRIGGER_START): (_R, Action.NONE),
    (_R, Event.TRIGGER_STOP): (_B, Action.STOP_EVENT),
    (_R, Event.STORAGE_FAILED): (_B, Action.STOP_EVENT),
    (_R, Event.SHUTDOWN): (_S, Action.STOP_EVENT_AND_SHUTDOWN),
    (_S, Event.START_BUTTON): (_S, Action.NONE),
    (_S, Event.MARKER_BUTTON): (_S, Action.NONE),
    (_S, Event.STOP_BUTTON): (_S, Action.NONE),
    (_S, Event.TRIGGER_START): (_S, Action.NONE),
    (_S, Event.TRIGGER_STOP): (_S, Action.NONE),
    (_S, Event.STORAGE_FAILED): (_S, Action.NONE),
    (_S, Event.SHUTDOWN): (_S, Action.NONE),
}

INITIAL_STATE = State.BUFFERING
FINAL_STATES: frozenset[State] = frozenset({State.SHUTDOWN})


def step(state: State, event: Event) -> tuple[State, Action]:
    """The next state and the action to perform for `event` in `state`."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TransitionTableError(f"no transition for {state!r} on {event!r}") from None


def check_table(
    transitions: Transitions = TRANSITIONS,
    initial_state: State = INITIAL_STATE,
    final_states: Iterable[State] = FINAL_STATES,
) -> None:
    """Raise TransitionTableError unless the table is complete and has no trap.

    Checks: every (state, event) pair has exactly one well-typed entry; there is
    a non-final initial state and at least one final state; every state is
    reachable from the initial one; every non-final state can reach a final one
    (so none is a dead end); a final state only loops to itself doing nothing.
    """
    final_states = frozenset(final_states)
    problems: list[str] = []

    if not isinstance(initial_state, State):
        problems.append(f"initial state {initial_state!r} is not a State")
    elif initial_state in final_states:
        problems.append(f"initial state {initial_state.name} is final")
    if not final_states:
        problems.append("no final state")

    expected = {(state, event) for state in State for event in Event}
    missing = expected - transitions.keys()
    unknown = transitions.keys() - expected
    problems += [f"missing entry for ({s.name}, {e.name})" for s, e in sorted(missing, key=_pair_key)]
    problems += [f"entry for unknown pair {pair!r}" for pair in unknown]

    for (state, event), target in transitions.items():
        if (state, event) not in expected:
            continue
        if (
            not isinstance(target, tuple)
            or len(target) != 2
            or not isinstance(target[0], State)
            or not isinstance(target[1], Action)
        ):
            problems.append(f"({state.name}, {event.name}) -> {target!r} is not (State, Action)")
        elif state in final_states and target != (state, Action.NONE):
            problems.append(
                f"final state {state.name} leaves or acts on {event.name}: {target[0].name}, {target[1].name}"
            )

    if problems:  # the graph checks below need a complete, well-typed table
        raise TransitionTableError("transition table: " + "; ".join(problems))

    successors = {state: {transitions[(state, event)][0] for event in Event} for state in State}
    reachable = _closure({initial_state}, successors)
    problems += [f"state {s.name} is unreachable from {initial_state.name}" for s in State if s not in reachable]

    predecessors: dict[State, set[State]] = {state: set() for state in State}
    for state, nexts in successors.items():
        for nxt in nexts:
            predecessors[nxt].add(state)
    can_finish = _closure(set(final_states), predecessors)
    problems += [f"state {s.name} cannot reach a final state" for s in State if s not in can_finish]

    if problems:
        raise TransitionTableError("transition table: " + "; ".join(problems))


def _closure(start: set[State], edges: Mapping[State, set[State]]) -> set[State]:
    seen = set(start)
    queue = deque(start)
    while queue:
        for nxt in edges[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _pair_key(pair: tuple[State, Event]) -> tuple[str, str]:
    return (pair[0].name, pair[1].name)


check_table()
