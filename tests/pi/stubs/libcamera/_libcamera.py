"""The value types of libcamera's Python bindings (pylibcamera), as picamera2 0.3.38 uses them.

Only what picamera2's own code touches is here, with the same names, attributes
and calling conventions (checked against picamera2.py, utils.py, controls.py,
request.py and the allocators). The camera, its sensor thread and the manager
are in `camera.py`.
"""
from __future__ import annotations

import enum
import mmap
import os
from types import SimpleNamespace


class Size:
    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.width, self.height = int(width), int(height)

    def __eq__(self, other):
        return isinstance(other, Size) and (self.width, self.height) == (other.width, other.height)

    __hash__ = object.__hash__

    def __repr__(self):
        return f"libcamera.Size({self.width}, {self.height})"


class Rectangle:
    def __init__(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0) -> None:
        self.x, self.y, self.width, self.height = int(x), int(y), int(width), int(height)

    def __repr__(self):
        return f"libcamera.Rectangle({self.x}, {self.y}, {self.width}, {self.height})"


class Transform:
    """hflip/vflip/transpose; Transform(other) copies. picamera2 patches __eq__ and __repr__."""

    def __init__(self, other: "Transform | None" = None, *, hflip: int = 0, vflip: int = 0,
                 transpose: int = 0, rotation: int = 0) -> None:
        if isinstance(other, Transform):
            hflip, vflip, transpose = other.hflip, other.vflip, other.transpose
        self.hflip, self.vflip, self.transpose = bool(hflip), bool(vflip), bool(transpose)

    def __str__(self):
        names = [n for n in ("hflip", "vflip", "transpose") if getattr(self, n)]
        return f"<libcamera.Transform '{'|'.join(names) or 'identity'}'>"


class Orientation(enum.Enum):
    Rotate0 = 1
    Rotate0Mirror = 2
    Rotate180 = 3
    Rotate180Mirror = 4
    Rotate90Mirror = 5
    Rotate270 = 6
    Rotate90 = 7
    Rotate270Mirror = 8


class ColorSpace:
    class Primaries(enum.Enum):
        Raw = 0
        Smpte170m = 1
        Rec709 = 2
        Rec2020 = 3

    class TransferFunction(enum.Enum):
        Linear = 0
        Srgb = 1
        Rec709 = 2

    class YcbcrEncoding(enum.Enum):
        Null = 0
        Rec601 = 1
        Rec709 = 2
        Rec2020 = 3

    class Range(enum.Enum):
        Full = 0
        Limited = 1

    def __init__(self, *args) -> None:
        if len(args) == 1 and isinstance(args[0], ColorSpace):
            other = args[0]
            args = (other.primaries, other.transferFunction, other.ycbcrEncoding, other.range)
        self.primaries, self.transferFunction, self.ycbcrEncoding, self.range = args

    @staticmethod
    def Raw():
        cs = ColorSpace
        return cs(cs.Primaries.Raw, cs.TransferFunction.Linear, cs.YcbcrEncoding.Null, cs.Range.Full)

    @staticmethod
    def Sycc():
        cs = ColorSpace
        return cs(cs.Primaries.Rec709, cs.TransferFunction.Srgb, cs.YcbcrEncoding.Rec601, cs.Range.Full)

    @staticmethod
    def Smpte170m():
        cs = ColorSpace
        return cs(cs.Primaries.Smpte170m, cs.TransferFunction.Rec709, cs.YcbcrEncoding.Rec601, cs.Range.Limited)

    @staticmethod
    def Rec709():
        cs = ColorSpace
        return cs(cs.Primaries.Rec709, cs.TransferFunction.Rec709, cs.YcbcrEncoding.Rec709, cs.Range.Limited)

    def __str__(self):
        return f"<libcamera.ColorSpace '{self.primaries.name}/{self.transferFunction.name}/" \
               f"{self.ycbcrEncoding.name}/{self.range.name}'>"


class PixelFormat:
    def __init__(self, name: str) -> None:
        self._name = str(name)

    def __str__(self):
        return self._name

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(self._name)


class ControlType(enum.Enum):
    Bool = 1
    Byte = 2
    Integer32 = 3
    Integer64 = 4
    Float = 5
    String = 6
    Rectangle = 7
    Size = 8


class ControlId:
    def __init__(self, id: int, name: str, type: ControlType) -> None:
        self.id, self.name, self.type = id, name, type

    def __repr__(self):
        return f"libcamera.ControlId({self.name})"


class ControlInfo:
    def __init__(self, min, max, default) -> None:
        self.min, self.max, self.default = min, max, default


_T = ControlType
controls = SimpleNamespace(
    ExposureTime=ControlId(1, "ExposureTime", _T.Integer32),
    ExposureTimeMode=ControlId(2, "ExposureTimeMode", _T.Integer32),
    AnalogueGain=ControlId(3, "AnalogueGain", _T.Float),
    AnalogueGainMode=ControlId(4, "AnalogueGainMode", _T.Integer32),
    FrameDurationLimits=ControlId(5, "FrameDurationLimits", _T.Integer64),
    FrameDuration=ControlId(6, "FrameDuration", _T.Integer64),
    ScalerCrop=ControlId(7, "ScalerCrop", _T.Rectangle),
    NoiseReductionMode=ControlId(8, "NoiseReductionMode", _T.Integer32),
    SensorTimestamp=ControlId(9, "SensorTimestamp", _T.Integer64),
    draft=SimpleNamespace(NoiseReductionModeEnum=enum.IntEnum(
        "NoiseReductionModeEnum", {"Off": 0, "Fast": 1, "HighQuality": 2, "Minimal": 3, "ZSL": 4})),
)
properties = SimpleNamespace(
    Model=ControlId(101, "Model", _T.String),
    Location=ControlId(102, "Location", _T.Integer32),
    Rotation=ControlId(103, "Rotation", _T.Integer32),
    PixelArraySize=ControlId(104, "PixelArraySize", _T.Size),
    ColorFilterArrangement=ControlId(105, "ColorFilterArrangement", _T.Integer32),
    draft=SimpleNamespace(ColorFilterArrangementEnum=enum.IntEnum(
        "ColorFilterArrangementEnum", {"RGGB": 0, "GRBG": 1, "GBRG": 2, "BGGR": 3, "RGB": 4, "MONO": 5})),
)


class StreamRole(enum.Enum):
    StillCapture = 0
    VideoRecording = 1
    Viewfinder = 2
    Raw = 3


class StreamFormats:
    def __init__(self, sizes_by_format: dict[str, list[tuple[int, int]]]) -> None:
        self._sizes = sizes_by_format

    @property
    def pixel_formats(self) -> list[PixelFormat]:
        return [PixelFormat(name) for name in self._sizes]

    def sizes(self, pixel_format) -> list[Size]:
        return [Size(*size) for size in self._sizes[str(pixel_format)]]


class StreamConfiguration:
    def __init__(self, pixel_format: str, size: tuple[int, int], formats: StreamFormats) -> None:
        self.pixel_format = PixelFormat(pixel_format)
        self.size = Size(*size)
        self.buffer_count = 4
        self.stride = 0
        self.frame_size = 0
        self.color_space = ColorSpace.Sycc()
        self.formats = formats
        self.stream = None      # set by Camera.configure(), as in libcamera

    def __repr__(self):
        return f"<StreamConfiguration {self.size.width}x{self.size.height}-{self.pixel_format}>"


class Stream:
    def __init__(self, configuration: StreamConfiguration) -> None:
        self.configuration = configuration


class SensorConfiguration:
    def __init__(self) -> None:
        self.bit_depth = 0
        self.output_size = Size()


class CameraConfiguration:
    class Status(enum.Enum):
        Valid = 0
        Adjusted = 1
        Invalid = 2

    def __init__(self, camera, stream_configs: list[StreamConfiguration]) -> None:
        self._camera = camera
        self._configs = stream_configs
        self.orientation = Orientation.Rotate0
        self.sensor_config = None

    def at(self, index: int) -> StreamConfiguration:
        return self._configs[index]

    def __iter__(self):
        return iter(self._configs)

    def __len__(self):
        return len(self._configs)

    def validate(self) -> "CameraConfiguration.Status":
        return self._camera._validate(self)


class FrameMetadata:
    class Status(enum.Enum):
        Success = 0
        Error = 1
        Cancelled = 2

    def __init__(self, planes: int) -> None:
        self.status = FrameMetadata.Status.Success
        self.sequence = 0
        self.timestamp = 0
        self.planes = [SimpleNamespace(bytes_used=0) for _ in range(planes)]


class FrameBuffer:
    class Plane:
        def __init__(self) -> None:
            self.fd, self.offset, self.length = -1, 0, 0

    def __init__(self, planes: list["FrameBuffer.Plane"], cookie: int = 0) -> None:
        self.planes = planes
        self.cookie = cookie
        self.metadata = FrameMetadata(len(planes))
        self._map = None

    def _mapped(self) -> mmap.mmap:
        """The sensor's own mapping of plane 0 (the ISP writes the frame through it)."""
        if self._map is None:
            plane = self.planes[0]
            self._map = mmap.mmap(plane.fd, plane.length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                  offset=plane.offset)
        return self._map


class FrameBufferAllocator:
    """libcamera's own allocator (picamera2's legacy LibcameraAllocator): memfd-backed buffers."""

    def __init__(self, camera) -> None:
        self._buffers: dict[Stream, list[FrameBuffer]] = {}
        self._fds: list[int] = []

    def allocate(self, stream: Stream) -> int:
        config = stream.configuration
        buffers = []
        for index in range(config.buffer_count):
            fd = os.memfd_create(f"libcamera-{index}")
            os.ftruncate(fd, config.frame_size)
            self._fds.append(fd)
            plane = FrameBuffer.Plane()
            plane.fd, plane.length = fd, config.frame_size
            buffers.append(FrameBuffer([plane]))
        self._buffers[stream] = buffers
        return len(buffers)

    def buffers(self, stream: Stream) -> list[FrameBuffer]:
        return self._buffers[stream]


class Request:
    class Status(enum.Enum):
        Pending = 0
        Complete = 1
        Cancelled = 2

    def __init__(self, camera, cookie: int) -> None:
        self._camera = camera
        self.cookie = cookie
        self.status = Request.Status.Pending
        self.buffers: dict[Stream, FrameBuffer] = {}
        self.metadata: dict[ControlId, object] = {}
        self.controls: dict[ControlId, object] = {}
        self.sequence = 0

    def add_buffer(self, stream: Stream, buffer: FrameBuffer) -> None:
        self.buffers[stream] = buffer

    def set_control(self, control: ControlId, value) -> None:
        self.controls[control] = value

    def reuse(self) -> None:
        # pylibcamera's reuse() keeps the buffers (Request::ReuseBuffers).
        self.status = Request.Status.Pending
        self.metadata = {}
        self.controls = {}
