import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                                              # tests/pod/loopback.py
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "unit"))       # micropython_support.py

# pod/ is flashed to the Pico as-is, not installed: import it from the checkout.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
