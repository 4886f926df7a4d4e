"""Package layout only (everything else is in pyproject.toml).

The source folders device/, hal/, pod/, simulator/, tools/ are installed *inside*
openbwc/ (site-packages/openbwc/device, ...), not at the top level: see
openbwc/__init__.py for why. pyproject.toml cannot express "every subpackage of these
folders, renamed under openbwc.", hence these few lines.
"""
from setuptools import find_packages, setup

TOP_LEVEL = ("device", "hal", "pod", "simulator", "tools")
found = find_packages(include=[f"{top}*" for top in TOP_LEVEL])

setup(
    packages=["openbwc"] + [f"openbwc.{name}" for name in found],
    package_dir={"openbwc": "openbwc", **{f"openbwc.{top}": top for top in TOP_LEVEL}},
    package_data={
        "openbwc.simulator": ["scenarios/*.toml"],
        "openbwc.device": ["assets/announce/*.flac"],   # the shipped announcement voices (docs/announce.md)
        "openbwc.tools": ["systemd/*.service"],          # the unit `bwc install-service` installs (docs/pi.md)
        "openbwc.tools.bench": ["defaults.toml"],        # the default thresholds of `bwc bench run` (docs/bench.md)
        "openbwc.tools.sim_web": ["static/*"],           # the page of `bwc sim` (docs/sim-live.md)
    },
)
