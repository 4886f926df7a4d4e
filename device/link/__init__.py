"""The pod link (docs/link.md §1-§7): frames, keys, counters and the session rules.

Runs under MicroPython on the pod and under CPython on the camera (ACT-9), so every
module here keeps to the common subset: plain classes, ints, bytes and % formatting;
no typing, dataclasses, enum, f-strings or `from __future__`.
"""
