import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # tests/pod/loopback.py

# pod/ is flashed to the Pico as-is, not installed: import it from the checkout.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
