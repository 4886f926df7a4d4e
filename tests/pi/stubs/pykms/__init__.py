"""Stub of pykms (kmsxx's Python bindings), which picamera2's DRM preview imports.

Import only: OpenBWC never opens a preview window. The PixelFormat names exist
because drm_preview.py reads them when its class body is built; nothing here
drives a display (Card and the framebuffers raise if anything tries).
"""
import enum


class PixelFormat(enum.Enum):
    RGB888 = "RG24"
    BGR888 = "BG24"
    YUYV = "YUYV"
    YVYU = "YVYU"
    XRGB8888 = "XR24"
    XBGR8888 = "XB24"
    ABGR8888 = "AB24"
    YUV420 = "YU12"
    YVU420 = "YV12"
    NV12 = "NV12"


class _NoDisplay:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("pykms stub: there is no display in the tests")


Card = ResourceManager = DumbFramebuffer = DmabufFramebuffer = AtomicReq = _NoDisplay
PlaneType = enum.Enum("PlaneType", "Overlay Primary Cursor")
