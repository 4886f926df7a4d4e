"""`python -m openbwc ARGS` is `bwc ARGS` (what tools that start bwc as a subprocess use)."""
import sys

from openbwc import main

sys.exit(main())
