"""Desktop simulator: simulated peripherals and the world model behind them (SIM-*).

Everything here implements a `hal` interface with real media (PyAV H.264 and AAC)
and runs on an injectable clock, so the unchanged firmware can be driven by tests
and scenarios faster than real time. Nothing here imports `device` or `tools`.
"""
