"""The one name OpenBWC puts into site-packages.

The firmware and tools import each other as `device`, `hal`, `pod`, `simulator` and
`tools`: short names that keep the source tree telling the architecture, but generic
enough that other distributions use them too (Debian's linuxcnc-uspace installs a
top-level `hal`; many PyPI projects have shipped a stray `tools`). So the wheel does not
install them at the top level: they live inside this package's directory
(site-packages/openbwc/device, ...), which is put first on sys.path only by this module,
i.e. only in a process that runs OpenBWC (`bwc`, `python -m openbwc`). Other programs in
the same environment never see our names, and ours are never shadowed by theirs.

In a source checkout (tests, `pip install -e`) the packages sit beside this directory.
"""
from __future__ import annotations

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
# Installed wheel: the packages are inside this directory. Source checkout: beside it.
PACKAGES_DIR = _here if os.path.isdir(os.path.join(_here, "device")) else os.path.dirname(_here)
if sys.path[:1] != [PACKAGES_DIR]:
    # First, so another distribution's `tools` or `hal` further down cannot shadow ours.
    sys.path.insert(0, PACKAGES_DIR)


def main() -> int:
    """The `bwc` console script."""
    from tools.cli import main as cli_main
    return cli_main()
