"""Every pod module keeps to the common subset of MicroPython and CPython, and compiles
under the real MicroPython (board_picow.py and ble_aioble.py cannot run here)."""
import ast
import os
import subprocess

import pytest

from loopback import REPO
from micropython_support import require_micropython as micropython

POD = os.path.join(REPO, "pod")
MODULES = sorted(f for f in os.listdir(POD) if f.endswith(".py"))
FORBIDDEN_IMPORTS = {"typing", "dataclasses", "enum", "__future__", "abc"}
# Only these may import hardware modules, and only they are never imported off the Pico.
HARDWARE = {"board_picow.py": {"machine", "network"}, "main.py": set(), "ble_aioble.py": {"aioble", "bluetooth"}}


@pytest.mark.parametrize("name", MODULES)
def test_common_subset(name):
    tree = ast.parse(open(os.path.join(POD, name)).read())
    for node in ast.walk(tree):
        assert not isinstance(node, ast.JoinedStr), "%s: no f-strings" % name
        assert not isinstance(node, ast.NamedExpr), "%s: no walrus" % name
        assert not isinstance(node, ast.AnnAssign), "%s: no variable annotations" % name
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.returns is None and all(a.annotation is None for a in node.args.args), "%s: no annotations" % name
        if isinstance(node, ast.ClassDef):
            assert not node.decorator_list, "%s: no class decorators (dataclasses)" % name
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for n in names:
                root = n.split(".")[0]
                assert root not in FORBIDDEN_IMPORTS, "%s imports %s" % (name, n)
                if root in ("machine", "network", "aioble", "bluetooth"):
                    assert root in HARDWARE.get(name, set()), "%s imports %s" % (name, n)


def test_every_module_compiles_under_micropython():
    mp = micropython()
    code = "\n".join("compile(open(%r).read(), %r, 'exec')" % (os.path.join(POD, n), n) for n in MODULES)
    result = subprocess.run([mp, "-c", code + "\nprint('ok')"], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
