"""OpenBWC firmware: state machine, pre-event buffer, gesture decoding, writer, policy.

Importing this package imports nothing else: no hardware library, no simulator
(DESIGN §3), so any submodule can be loaded on its own — gestures.py even under
MicroPython (ACT-9).
"""
