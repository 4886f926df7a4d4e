"""The interactive simulator's web side (docs/sim-live.md): an ASGI app over simulator/live.py."""
