"""The control pod's program (docs/pod.md): MicroPython on a Pico W, CPython in tests.

Every module keeps to the common subset of MicroPython and CPython: plain classes, ints,
bytes and % formatting; no typing, dataclasses, enum, f-strings, walrus or `from __future__`.
"""
