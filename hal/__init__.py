"""Hardware abstraction layer: one small interface per peripheral (HAL-1).

Importing `hal` never imports a hardware library; Raspberry Pi backends live in
`hal.pi` and are imported only when that backend is chosen.
"""
from hal.battery import Battery
from hal.board import Board
from hal.camera import Camera
from hal.clock import Clock, Timer
from hal.indicators import Indicators
from hal.inputs import Inputs
from hal.keystore import KeyStore
from hal.media import AudioFormat, MediaPacket, PacketSink, VideoFormat
from hal.microphone import Microphone
from hal.speaker import Speaker
from hal.storage import Storage, StorageError, WritableFile

__all__ = [
    "AudioFormat", "Battery", "Board", "Camera", "Clock", "Indicators", "Inputs",
    "KeyStore", "MediaPacket", "Microphone", "PacketSink", "Speaker", "Storage",
    "StorageError", "Timer", "VideoFormat", "WritableFile",
]
