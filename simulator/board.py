"""Composition root for the simulator: builds a Board of simulated parts.

Storage and key store sit on a SimFS (simulator/simfs.py), so power cuts lose what
was never made durable and storage faults can be injected; the Pi keeps OS_FS.
"""
from __future__ import annotations

from dataclasses import dataclass

from hal.board import Board
from hal.clock import Clock
from hal.dirstorage import DirectoryStorage
from hal.filekeystore import FileKeyStore
from hal.fs import FileSystem
from hal.inputs import RECORD_BUTTON
from hal.media import AudioFormat, VideoFormat
from hal.radio import Radio
from simulator.audio import SimAir, SimMicrophone, SimSpeaker
from simulator.battery import SimBattery
from simulator.camera import SimCamera
from simulator.indicators import SimIndicators
from simulator.inputs import SimInputs
from simulator.simfs import SimFS
from simulator.source_audio import SourceAudio
from simulator.trace import Trace


@dataclass(frozen=True)
class SimWorld:
    """The board plus the simulated parts' own handles (fault switches, history)."""
    board: Board
    camera: SimCamera
    inputs: SimInputs
    indicators: SimIndicators
    air: SimAir
    battery: SimBattery
    fs: FileSystem

    @property
    def microphone(self) -> SimMicrophone:
        return self.board.microphone


def build_sim_board(clock: Clock, device_dir: str, storage_dir: str, video: VideoFormat,
                    trigger_names: tuple[str, ...] = (), source_path: str | None = None,
                    audio: AudioFormat = AudioFormat(), constant_bitrate: bool = False,
                    fs: FileSystem | None = None, battery: SimBattery | None = None,
                    trace: Trace | None = None, radio: Radio | None = None,
                    group_radio: Radio | None = None) -> SimWorld:
    """`fs`: the file system under storage and key store; a fresh SimFS if not given.
    `battery`: the cell in the camera (a run keeps one across boots); a full one if not
    given. `trace`: where indicators, speaker and inputs report what they did."""
    fs = SimFS() if fs is None else fs
    air = SimAir(sample_rate_hz=audio.sample_rate_hz)
    camera = SimCamera(clock, video, source_path, constant_bitrate=constant_bitrate)
    if source_path:  # the file's sound is in the room, heard with the speaker's (simulator/source_audio.py)
        camera.attach_soundtrack(SourceAudio(clock, air, source_path))
    inputs = SimInputs(clock, (RECORD_BUTTON, *trigger_names), trace=trace)
    indicators = SimIndicators(clock, trace=trace)
    battery = SimBattery(clock) if battery is None else battery
    board = Board(
        camera=camera, microphone=SimMicrophone(clock, air, audio), speaker=SimSpeaker(clock, air),
        inputs=inputs, indicators=indicators, clock=clock, storage=DirectoryStorage(storage_dir, fs),
        battery=battery, keystore=FileKeyStore(device_dir, fs), radio=radio,
        group_radio=group_radio,
    )
    board.speaker.trace = trace
    return SimWorld(board, camera, inputs, indicators, air, battery, fs)
