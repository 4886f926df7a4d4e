"""One fixture per HAL part, parametrised over every backend in backends.py.

gpiozero's layout: its tests take a `pin_factory` fixture that runs them once per pin
factory; here each part's rig fixture runs every contract test once per backend, so a
test id reads test_name[sim] / test_name[pi].
"""
from __future__ import annotations

import pytest

import backends


def _rig(request, *args):
    with request.param(*args) as rig:
        yield rig


@pytest.fixture(params=list(backends.INPUTS.values()), ids=list(backends.INPUTS))
def inputs_rig(request):
    yield from _rig(request)


@pytest.fixture(params=list(backends.INDICATORS.values()), ids=list(backends.INDICATORS))
def indicators_rig(request):
    yield from _rig(request)


@pytest.fixture(params=list(backends.GAUGED_BATTERIES.values()), ids=list(backends.GAUGED_BATTERIES))
def battery_rig(request, tmp_path):
    yield from _rig(request, tmp_path)


@pytest.fixture(params=list(backends.GAUGELESS_BATTERIES.values()), ids=list(backends.GAUGELESS_BATTERIES))
def gaugeless_battery(request, tmp_path):
    yield from _rig(request, tmp_path)


@pytest.fixture(params=list(backends.SPEAKERS.values()), ids=list(backends.SPEAKERS))
def speaker_rig(request, tmp_path):
    yield from _rig(request, tmp_path)


@pytest.fixture(params=list(backends.MICROPHONES.values()), ids=list(backends.MICROPHONES))
def microphone_rig(request, tmp_path, monkeypatch):
    yield from _rig(request, tmp_path, monkeypatch)


@pytest.fixture(params=list(backends.CAMERAS.values()), ids=list(backends.CAMERAS))
def camera_rig(request):
    yield from _rig(request)


@pytest.fixture(params=list(backends.CLOCKS.values()), ids=list(backends.CLOCKS))
def clock(request):
    return request.param()
