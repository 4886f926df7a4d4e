"""The Raspberry Pi OS install, on this Debian 12 machine's own system Python (issue 9).

Not a venv pretending to be a system: /usr/bin/python3 is Debian's 3.11 with apt's numpy
1.24 and a simplejpeg compiled against it in /usr/lib/python3/dist-packages, as Raspberry
Pi OS Bookworm ships them (.ci/bookworm-setup builds simplejpeg the way Pi OS does). The
tests reproduce what broke on a Pi (a PyPI numpy 2.x in the --system-site-packages venv
breaks apt's simplejpeg, which picamera2 imports) and show deploy/pi-install.sh keeping it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
pytestmark = pytest.mark.tool


def _system_python_like_pi_os() -> None:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import numpy, simplejpeg; print(numpy.__file__, numpy.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or not probe.stdout.startswith("/usr/lib/python3/dist-packages/"):
        pytest.fail(f"{SYSTEM_PYTHON} lacks apt's numpy and a simplejpeg built against it: run .ci/bookworm-setup "
                    f"as root ({(probe.stderr.strip().splitlines() or ['?'])[-1]})")


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def pi_venv(tmp_path_factory) -> Path:
    """deploy/pi-install.sh, apt step skipped (.ci/run installed what it names), into a temp prefix."""
    _system_python_like_pi_os()
    prefix = tmp_path_factory.mktemp("opt-openbwc")
    env = dict(os.environ, OPENBWC_APT="0", OPENBWC_PREFIX=str(prefix), OPENBWC_BIN_DIR=str(prefix / "bin"))
    env.pop("PYTHONPATH", None)
    result = _run(["sh", str(REPO / "deploy" / "pi-install.sh")], env=env, cwd=prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "numpy==1.24" in result.stdout   # the constraint came from apt's numpy
    return prefix


def _in_venv(prefix: Path, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return _run([str(prefix / "venv" / "bin" / "python"), "-c", code], env=env, cwd=prefix)


def test_a_pypi_numpy_2_in_the_venv_breaks_apts_simplejpeg(tmp_path):
    """The failure on a real Pi: `pip install .` with a numpy bound the system's 1.24 did not meet."""
    _system_python_like_pi_os()
    venv = tmp_path / "venv"
    assert _run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(venv)]).returncode == 0
    installed = _run([str(venv / "bin" / "pip"), "install", "-q", "numpy>=2"])
    assert installed.returncode == 0, installed.stderr
    broken = _run([str(venv / "bin" / "python"), "-c", "import simplejpeg"], cwd=tmp_path)
    assert broken.returncode != 0
    assert "numpy.dtype size changed" in broken.stderr


def test_the_pi_install_keeps_the_systems_numpy_and_simplejpeg_imports(pi_venv):
    result = _in_venv(pi_venv, "import numpy, simplejpeg; print(numpy.__version__, numpy.__file__)")
    assert result.returncode == 0, result.stderr
    version, path = result.stdout.split()
    assert version.startswith("1.24.") and path.startswith("/usr/lib/python3/dist-packages/")


def test_the_installed_camera_records_and_exports_on_bookworms_python_and_numpy(pi_venv, tmp_path):
    """The whole product (record, encrypt, verify, export) on Debian's Python 3.11 and numpy 1.24."""
    result = _run([str(pi_venv / "bin" / "bwc"), "demo", "--out", str(tmp_path / "demo")],
                  env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].endswith(".mp4")
    assert "Result: AUTHENTIC and complete" in result.stdout
    assert "en found at" in result.stdout   # the spoken notice decoded back from the AAC (numpy work)


def test_the_install_puts_one_name_on_the_path_not_device_hal_or_tools(pi_venv):
    """Debian's linuxcnc-uspace installs a top-level `hal`; ours must neither shadow nor be shadowed."""
    result = _in_venv(pi_venv, "import importlib.util as u; print([n for n in ('device', 'hal', 'pod', 'simulator', "
                               "'tools') if u.find_spec(n)], u.find_spec('openbwc') is not None)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True"]


def test_a_32_bit_python_is_refused_in_one_line(tmp_path):
    """Zero 2 W on 32-bit Pi OS: no wheels for pynacl or numpy; the installer says what to flash."""
    fake = tmp_path / "python3-32"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = -c ]; then echo 32; exit 0; fi\nexec /usr/bin/python3 \"$@\"\n")
    fake.chmod(0o755)
    env = dict(os.environ, OPENBWC_APT="0", OPENBWC_PREFIX=str(tmp_path / "p"), OPENBWC_SYSTEM_PYTHON=str(fake))
    result = _run(["sh", str(REPO / "deploy" / "pi-install.sh")], env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == ("pi-install: this is a 32-bit Python: flash the 64-bit Raspberry Pi OS "
                                     "(docs/pi.md#zero-2-w)")
    assert not (tmp_path / "p").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
