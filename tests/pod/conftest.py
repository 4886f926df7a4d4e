import os
import sys

# pod/ is flashed to the Pico as-is, not installed: import it from the checkout.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
