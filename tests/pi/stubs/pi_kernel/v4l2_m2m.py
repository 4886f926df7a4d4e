"""A fake /dev/video11: the Pi 4 / Zero 2 W H.264 encoder (bcm2835-codec), seen through its ioctls.

The boundary. picamera2's V4L2Encoder (encoders/v4l2_encoder.py) talks to the
kernel through exactly three names in its own module: `open('/dev/video11')`,
`fcntl.ioctl(...)` and `select.poll()`. install() rebinds those three names in
that module only, so all of V4L2Encoder's and H264Encoder's code runs as on a
Pi: the controls it sets, REQBUFS/QUERYBUF/QBUF/DQBUF/STREAMON with the real
videodev2 ctypes structures, its poll thread, buffer queueing, the mmap of
the capture buffers (a real mmap of a memfd that stands for the device's
memory) and its outputframe() calls. What the hardware does is done here:
each OUTPUT buffer (a DMABUF fd from the camera; its frame is read through a
real mmap) is encoded with libx264 through PyAV honouring bitrate, I-period
and repeat-headers, and the access unit is written into a queued CAPTURE
buffer with the source buffer's timestamp and V4L2_BUF_FLAG_KEYFRAME, as the
M2M framework does. Nothing else of the process sees the fake.
"""
from __future__ import annotations

import builtins
import collections
import ctypes
import errno
import fcntl as real_fcntl
import mmap
import os
import select as real_select
import threading
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import videodev2 as v4l2

DEVICE_PATH = "/dev/video11"
CAPTURE_BUFFER_BYTES = 512 << 10   # what V4L2Encoder asks for with sizeimage
MAX_CAPTURE_BUFFERS = 32
devices: list["FakeH264M2MDevice"] = []   # every device opened, for tests to inspect


class FakeH264M2MDevice:
    def __init__(self) -> None:
        self._memory_fd = os.memfd_create("bcm2835-codec-capture")
        os.ftruncate(self._memory_fd, MAX_CAPTURE_BUFFERS * CAPTURE_BUFFER_BYTES)
        self._memory = mmap.mmap(self._memory_fd, MAX_CAPTURE_BUFFERS * CAPTURE_BUFFER_BYTES)
        self.closed = False
        self.controls: dict[int, int] = {}
        self._width = self._height = self._stride = 0
        # x264's rate control needs a frame rate; the VideoCore one paces by its own (30 fps default).
        self._framerate = Fraction(30)
        self._cond = threading.Condition()
        self._pending_frames: collections.deque = collections.deque()  # (index, fd, bytes, ts)
        self._done_output: collections.deque[int] = collections.deque()
        self._free_capture: collections.deque[int] = collections.deque()
        self._done_capture: collections.deque = collections.deque()     # (index, bytes, flags, ts)
        self._capture_count = 0
        self._streaming = False
        self._worker: threading.Thread | None = None
        self.frames_encoded = 0
        devices.append(self)

    # -- file-like --------------------------------------------------------------------
    def fileno(self) -> int:
        return self._memory_fd

    def close(self) -> None:
        self._stop_streaming()
        self._memory.close()
        os.close(self._memory_fd)
        self.closed = True

    # -- poll -------------------------------------------------------------------------
    def poll_events(self, timeout_ms: float) -> list[tuple[int, int]]:
        with self._cond:
            self._cond.wait_for(lambda: self._done_output or self._done_capture, timeout=timeout_ms / 1000)
            mask = (real_select.POLLOUT if self._done_output else 0) | (real_select.POLLIN if self._done_capture else 0)
        return [(self._memory_fd, mask)] if mask else []

    # -- ioctl --------------------------------------------------------------------------
    def ioctl(self, request: int, arg) -> int:
        handler = self._HANDLERS.get(request)
        if handler is None:
            raise OSError(errno.ENOTTY, f"fake bcm2835-codec: ioctl {request:#x} not supported")
        return handler(self, arg) or 0

    def _querycap(self, cap) -> None:
        for field, text in (("driver", b"bcm2835-codec"), ("card", b"bcm2835-codec-encode")):
            ctypes.memmove(getattr(cap, field), text, len(text))

    def _s_ctrl(self, ctrl) -> None:
        self.controls[ctrl.id] = ctrl.value

    def _s_ext_ctrls(self, ext) -> None:
        for index in range(ext.count):
            self.controls[ext.controls[index].id] = ext.controls[index].value

    def _s_fmt(self, fmt) -> None:
        pix = fmt.fmt.pix_mp
        if fmt.type == v4l2.V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE:
            if pix.pixelformat != v4l2.V4L2_PIX_FMT_YUV420:
                raise OSError(errno.EINVAL, "fake bcm2835-codec: only YUV420 input is modelled")
            self._width, self._height, self._stride = pix.width, pix.height, pix.plane_fmt[0].bytesperline
        elif pix.pixelformat != v4l2.V4L2_PIX_FMT_H264:
            raise OSError(errno.EINVAL, "fake bcm2835-codec: capture format must be H.264")

    def _s_parm(self, parm) -> None:
        timeperframe = parm.parm.output.timeperframe
        self._framerate = Fraction(timeperframe.denominator, timeperframe.numerator)

    def _reqbufs(self, req) -> None:
        if req.type == v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE:
            req.count = min(req.count, MAX_CAPTURE_BUFFERS)
            self._capture_count = req.count

    def _querybuf(self, buf) -> None:
        buf.m.planes[0].length = CAPTURE_BUFFER_BYTES
        buf.m.planes[0].m.mem_offset = buf.index * CAPTURE_BUFFER_BYTES

    def _qbuf(self, buf) -> None:
        with self._cond:
            if buf.type == v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE:
                self._free_capture.append(buf.index)
            else:
                plane = buf.m.planes[0]
                timestamp_us = buf.timestamp.tv_sec * 1_000_000 + buf.timestamp.tv_usec
                self._pending_frames.append((buf.index, plane.m.fd, plane.bytesused, timestamp_us))
            self._cond.notify_all()

    def _dqbuf(self, buf) -> None:
        with self._cond:
            if buf.type == v4l2.V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE:
                if not self._done_output:
                    raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
                buf.index = self._done_output.popleft()
                return
            if not self._done_capture:
                raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
            index, size, flags, timestamp_us = self._done_capture.popleft()
        buf.index, buf.flags = index, flags
        buf.m.planes[0].bytesused = size
        buf.m.planes[0].length = CAPTURE_BUFFER_BYTES
        buf.timestamp.tv_sec, buf.timestamp.tv_usec = divmod(timestamp_us, 1_000_000)

    def _streamon(self, buf_type) -> None:
        if buf_type.value == v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE and not self._streaming:
            self._streaming = True
            self._worker = threading.Thread(target=self._encode_loop, name="bcm2835-codec", daemon=True)
            self._worker.start()

    def _streamoff(self, buf_type) -> None:
        self._stop_streaming()

    def _stop_streaming(self) -> None:
        with self._cond:
            self._streaming = False
            self._cond.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join()
        self._worker = None

    _HANDLERS = {
        v4l2.VIDIOC_QUERYCAP: _querycap, v4l2.VIDIOC_S_CTRL: _s_ctrl, v4l2.VIDIOC_S_EXT_CTRLS: _s_ext_ctrls,
        v4l2.VIDIOC_S_FMT: _s_fmt, v4l2.VIDIOC_S_PARM: _s_parm, v4l2.VIDIOC_REQBUFS: _reqbufs,
        v4l2.VIDIOC_QUERYBUF: _querybuf, v4l2.VIDIOC_QBUF: _qbuf, v4l2.VIDIOC_DQBUF: _dqbuf,
        v4l2.VIDIOC_STREAMON: _streamon, v4l2.VIDIOC_STREAMOFF: _streamoff,
    }

    # -- the hardware -------------------------------------------------------------------
    def _codec(self) -> av.CodecContext:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = self._width, self._height, "yuv420p"
        codec.time_base = Fraction(1, 1_000_000)
        codec.framerate = self._framerate
        codec.bit_rate = self.controls.get(v4l2.V4L2_CID_MPEG_VIDEO_BITRATE, 10_000_000)
        codec.gop_size = self.controls.get(v4l2.V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, 60)
        repeat = self.controls.get(v4l2.V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 0)
        # The VideoCore encoder has no B-frames, no look-ahead and no scene-cut IDRs.
        codec.options = {"preset": "ultrafast", "tune": "zerolatency",
                         "x264-params": f"scenecut=0:repeat-headers={1 if repeat else 0}"}
        return codec

    def _read_frame(self, fd: int, size: int) -> av.VideoFrame:
        width, height, stride = self._width, self._height, self._stride
        with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as source:
            data = np.frombuffer(source, dtype=np.uint8, count=size).copy()
        luma = data[:stride * height].reshape(height, stride)[:, :width]
        chroma = data[stride * height:].reshape(height, stride // 2)   # U rows, then V rows
        u = chroma[:height // 2, :width // 2].reshape(-1, width)
        v = chroma[height // 2:, :width // 2].reshape(-1, width)
        return av.VideoFrame.from_ndarray(np.concatenate([luma, u, v]), format="yuv420p")

    def _encode_loop(self) -> None:
        codec = self._codec()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending_frames or not self._streaming)
                if not self._streaming:
                    return
                index, fd, size, timestamp_us = self._pending_frames.popleft()
            frame = self._read_frame(fd, size)
            with self._cond:
                self._done_output.append(index)   # the camera's buffer can go back to libcamera
                self._cond.notify_all()
            frame.pts = timestamp_us
            for packet in codec.encode(frame):
                self._deliver(bytes(packet), packet.is_keyframe, timestamp_us)

    def _deliver(self, data: bytes, keyframe: bool, timestamp_us: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._free_capture or not self._streaming)
            if not self._streaming:
                return
            index = self._free_capture.popleft()
        offset = index * CAPTURE_BUFFER_BYTES
        self._memory[offset:offset + len(data)] = data
        flags = v4l2.V4L2_BUF_FLAG_KEYFRAME if keyframe else 0
        with self._cond:
            self._done_capture.append((index, len(data), flags, timestamp_us))
            self.frames_encoded += 1
            self._cond.notify_all()


class _FakePoll:
    def __init__(self) -> None:
        self._device: FakeH264M2MDevice | None = None
        self._real = real_select.poll()

    def register(self, target, mask=real_select.POLLIN | real_select.POLLOUT) -> None:
        if isinstance(target, FakeH264M2MDevice):
            self._device = target
        else:
            self._real.register(target, mask)

    def poll(self, timeout_ms=None):
        if self._device is None:
            return self._real.poll(timeout_ms)
        return self._device.poll_events(400 if timeout_ms is None else timeout_ms)


def _open(path, *args, **kwargs):
    if os.fspath(path) == DEVICE_PATH:
        return FakeH264M2MDevice()
    return builtins.open(path, *args, **kwargs)


def _ioctl(fd, request, arg=0, mutate_flag=True):
    if isinstance(fd, FakeH264M2MDevice):
        return fd.ioctl(request, arg)
    return real_fcntl.ioctl(fd, request, arg, mutate_flag)


def install(v4l2_encoder_module) -> None:
    """Rebind open/fcntl/select in picamera2.encoders.v4l2_encoder only (see the module doc)."""
    v4l2_encoder_module.open = _open
    v4l2_encoder_module.fcntl = SimpleNamespace(ioctl=_ioctl)
    v4l2_encoder_module.select = SimpleNamespace(poll=_FakePoll, POLLIN=real_select.POLLIN,
                                                 POLLOUT=real_select.POLLOUT)
