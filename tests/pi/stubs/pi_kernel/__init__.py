"""The Raspberry Pi kernel devices picamera2 opens, faked at picamera2's own call sites.

Loaded by the stub libcamera (which picamera2 imports before anything else),
install() puts an import hook in place that patches, right after each loads:
- picamera2.platform: the VIDIOC_QUERYCAP answer (vc4 board: Pi 4/Zero 2 W,
  pisp: Pi 5), chosen by the stub's `platform` setting;
- picamera2.dma_heap, picamera2.allocators.dmaallocator: /dev/dma_heap (dma_heap.py);
- picamera2.encoders.v4l2_encoder: /dev/video11, the H.264 encoder (v4l2_m2m.py).
Each patch rebinds names in that one module; see the modules for the boundary.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys


def _set_platform(module) -> None:
    from libcamera import stub_settings
    if stub_settings.platform == "pisp":
        module._platform = module.Platform.PISP


def _patches():
    from . import dma_heap, v4l2_m2m
    return {
        "picamera2.platform": _set_platform,
        "picamera2.dma_heap": dma_heap.install_heap,
        "picamera2.allocators.dmaallocator": dma_heap.install_sync,
        "picamera2.encoders.v4l2_encoder": v4l2_m2m.install,
    }


class _PatchAfterLoad(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._patches = _patches()

    def find_spec(self, name, path, target=None):
        patch = self._patches.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_then_patch  # this module's own loader instance
        return spec


def install() -> None:
    if any(isinstance(finder, _PatchAfterLoad) for finder in sys.meta_path):
        return
    already = [name for name in _patches() if name in sys.modules]
    if already:
        raise RuntimeError(f"pi_kernel stubs installed after {already} were imported")
    sys.meta_path.insert(0, _PatchAfterLoad())
