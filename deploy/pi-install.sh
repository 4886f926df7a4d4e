#!/bin/sh
# Install OpenBWC on Raspberry Pi OS (Bookworm or Trixie, 64-bit) from this checkout.
#
#   sudo deploy/pi-install.sh            # apt packages, /opt/openbwc/venv, /usr/local/bin/bwc
#
# Environment: OPENBWC_PREFIX (default /opt/openbwc), OPENBWC_APT=0 to skip apt-get (CI,
# or an image that already has the packages), OPENBWC_BIN_DIR (default /usr/local/bin).
#
# Why a script and not just `pip install .` (docs/pi.md#install):
# - picamera2, libcamera and lgpio come from apt (they bind to the board's kernel and
#   libcamera build); the venv sees them through --system-site-packages.
# - apt's simplejpeg and picamera2 are compiled against the system's numpy. A numpy 2.x
#   from PyPI in the venv would shadow it and make `import picamera2` fail with
#   "ValueError: numpy.dtype size changed". The constraints file written below pins numpy to
#   the exact version apt installed, so pip keeps the system's copy, now and on upgrades.
set -eu

SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${OPENBWC_PREFIX:-/opt/openbwc}
BIN_DIR=${OPENBWC_BIN_DIR:-/usr/local/bin}
SYSTEM_PYTHON=${OPENBWC_SYSTEM_PYTHON:-/usr/bin/python3}

fail() { echo "pi-install: $*" >&2; exit 1; }

# 64-bit userland only: 32-bit Pi OS has no PyPI wheels for pynacl or current numpy, and
# building them on a Zero 2 W takes hours (docs/pi.md#zero-2-w).
bits=$("$SYSTEM_PYTHON" -c 'import struct; print(struct.calcsize("P") * 8)') ||
    fail "$SYSTEM_PYTHON does not run"
[ "$bits" = 64 ] || fail "this is a ${bits}-bit Python: flash the 64-bit Raspberry Pi OS (docs/pi.md#zero-2-w)"

if [ "${OPENBWC_APT:-1}" != 0 ]; then
    apt-get update -q
    # python3-picamera2 brings libcamera, simplejpeg and numpy; alsa-utils: arecord/aplay.
    apt-get install -y -q --no-install-recommends python3-picamera2 python3-lgpio python3-venv alsa-utils
fi

mkdir -p "$PREFIX"
"$SYSTEM_PYTHON" -m venv --system-site-packages "$PREFIX/venv"

# Pin what the venv must take from the system, at the system's exact versions.
"$SYSTEM_PYTHON" - >"$PREFIX/constraints.txt" <<'PY'
import importlib.metadata as md
for name in ("numpy",):   # the ABI apt's simplejpeg and picamera2 were built against
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass              # not from apt (a bare image): pip may choose
PY
echo "pi-install: constraints: $(tr '\n' ' ' <"$PREFIX/constraints.txt")"

"$PREFIX/venv/bin/pip" install -q --constraint "$PREFIX/constraints.txt" "$SOURCE_DIR"
mkdir -p "$BIN_DIR"
ln -sf "$PREFIX/venv/bin/bwc" "$BIN_DIR/bwc"
"$PREFIX/venv/bin/bwc" --help >/dev/null || fail "bwc does not start in $PREFIX/venv"
echo "pi-install: bwc installed in $PREFIX/venv (linked from $BIN_DIR/bwc); next: bwc doctor --hal pi"
