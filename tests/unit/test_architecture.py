"""Import direction and layering (DESIGN §3), checked on the source itself."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HARDWARE = {"picamera2", "libcamera", "gpiozero", "lgpio", "RPi", "pigpio", "smbus", "spidev"}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str, exclude: str | None = None) -> list[pathlib.Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    return [f for f in files if exclude is None or exclude not in f.relative_to(ROOT).parts]


@pytest.mark.parametrize("path", _modules("device"), ids=lambda p: str(p.relative_to(ROOT)))
def test_device_imports_no_simulator_tools_or_hardware(path):
    bad = _imports(path) & ({"simulator", "tools"} | HARDWARE)
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("device"), ids=lambda p: str(p.relative_to(ROOT)))
def test_device_never_reads_time_directly(path):
    # Time is a HAL part: the firmware must run on the virtual clock in tests.
    assert "time" not in _imports(path), f"{path.relative_to(ROOT)} imports time"


@pytest.mark.parametrize("path", _modules("hal"), ids=lambda p: str(p.relative_to(ROOT)))
def test_hal_imports_no_device_or_simulator(path):
    bad = _imports(path) & {"device", "simulator", "tools"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("hal", exclude="pi"), ids=lambda p: str(p.relative_to(ROOT)))
def test_hal_interfaces_import_no_hardware_library(path):
    bad = _imports(path) & HARDWARE
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_hal_and_device_loads_no_hardware_library():
    code = ("import sys, hal, hal.pi, device.firmware; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HARDWARE)!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_checks_see_imports(tmp_path):
    # The checks above would pass vacuously if _imports saw nothing.
    sample = tmp_path / "sample.py"
    sample.write_text("import gpiozero.pins\nfrom simulator.clock import VirtualClock\nfrom . import x\n")
    assert _imports(sample) == {"gpiozero", "simulator"}
