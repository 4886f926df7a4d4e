"""ALSA microphone and speaker (HAL-2), both through alsa-utils.

The microphone splits into pure parts that are unit-tested on any machine -
SampleClock (sample index -> monotonic µs), AacEncoder (PCM -> raw AAC-LC via
PyAV's native "aac") and MicPipeline (both together, PCM in, MediaPackets out)
- and a thin ALSA edge, PiMicrophone, that reads S16_LE mono PCM from an
`arecord` process (hal/pi/alsa_capture.py) on one named thread and feeds the
pipeline. PyAV only encodes: its ALSA input cannot open any device from the
PyPI wheel (its bundled libasound looks for its configuration and plugins in
the wheel's build tree), and even with ALSA_CONFIG_DIR set it cannot load the
system's plugins (PipeWire's `default` on Raspberry Pi OS desktop). arecord
uses the system's libasound and configuration, as aplay does for the speaker.

The speaker pipes raw S16_LE into `aplay`, one process per clip, on one named
worker thread. That is simpler and sturdier than an output container: aplay
owns ALSA's period/underrun handling, and a wedged clip is a process we can
see and kill.
"""
from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from hal.clock import Clock
from hal.media import AudioFormat, MediaPacket, PacketSink
from hal.microphone import Microphone
from hal.pi import BackendUnavailable
from hal.pi.alsa_capture import (DEFAULT_OPEN_TIMEOUT_S, PERIOD_TIME_US, ArecordStream, CaptureFailed,
                                 alsa_reason)
from hal.speaker import Speaker

_log = logging.getLogger(__name__)

AAC_FRAME_SAMPLES = 1024  # FFmpeg's native AAC-LC encoder frame size
# Re-anchor sample time to the clock when they disagree by more than this:
# an ALSA overrun (samples lost) or accumulated crystal drift (~50 ppm, 0.2 s/h).
DEFAULT_RESYNC_THRESHOLD_US = 20_000


class _Anchor(NamedTuple):
    sample_index: int
    timestamp_us: int


class SampleClock:
    """Maps capture sample indices to Clock.monotonic_us().

    Time advances by sample count (smooth, no scheduling jitter) and is re-anchored
    to the clock only when the two drift apart by more than the threshold. The
    mapping stays strictly increasing, so packet timestamps never go backwards.
    """

    def __init__(self, sample_rate_hz: int, resync_threshold_us: int = DEFAULT_RESYNC_THRESHOLD_US) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.resync_threshold_us = resync_threshold_us
        self.next_sample_index = 0
        self.resync_count = 0
        self._anchors: list[_Anchor] = []

    def on_capture(self, sample_count: int, read_done_us: int) -> None:
        """Register the next `sample_count` samples, whose read returned at `read_done_us`."""
        # The last sample was captured about when the read returned, so the
        # buffer's first sample is one buffer-length earlier.
        observed_start_us = read_done_us - self._span_us(sample_count)
        index = self.next_sample_index
        if not self._anchors:
            self._anchors.append(_Anchor(index, observed_start_us))
        elif abs(observed_start_us - self.timestamp_us(index)) > self.resync_threshold_us:
            floor_us = self.timestamp_us(index - 1) + 1
            self._anchors.append(_Anchor(index, max(observed_start_us, floor_us)))
            self.resync_count += 1
            # Packets lag capture by at most two AAC frames; older anchors are dead.
            while len(self._anchors) > 1 and self._anchors[1].sample_index < index - 8 * AAC_FRAME_SAMPLES:
                self._anchors.pop(0)
        self.next_sample_index = index + sample_count

    def timestamp_us(self, sample_index: int) -> int:
        """Capture time of a sample (negative indices - the encoder's priming - extrapolate back)."""
        if not self._anchors:
            raise ValueError("SampleClock has no captured samples yet")
        anchor = self._anchors[0]
        for candidate in reversed(self._anchors):
            if candidate.sample_index <= sample_index:
                anchor = candidate
                break
        return anchor.timestamp_us + self._span_us(sample_index - anchor.sample_index)

    def _span_us(self, sample_count: int) -> int:
        # Rounded to nearest in integers: symmetric for the negative (priming) indices.
        rate = self.sample_rate_hz
        return (2 * sample_count * 1_000_000 + rate) // (2 * rate)


class AacEncoder:
    """Mono int16 PCM in, raw AAC-LC frames (no ADTS) out, with their first-sample index.

    Packet indices follow FFmpeg: the first packet carries the encoder's
    priming and has index -1024; the decoded frame with index N holds input
    sample N onwards, so index -> time is the same mapping as for input samples.
    """

    def __init__(self, audio_format: AudioFormat) -> None:
        import av  # PyAV: a dependency of the project, but kept off `import hal.pi`

        if audio_format.channels != 1:
            raise ValueError("AacEncoder encodes mono only")
        self._av = av
        self._rate = audio_format.sample_rate_hz
        self._codec = av.CodecContext.create("aac", "w")
        self._codec.sample_rate = self._rate
        self._codec.layout = "mono"
        self._codec.format = "fltp"
        self._codec.bit_rate = audio_format.bitrate_bps
        self._codec.time_base = Fraction(1, self._rate)
        self._codec.open()
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_index = 0  # sample index of _pending[0]

    def encode(self, pcm: np.ndarray) -> list[tuple[int, bytes]]:
        """Queue samples; return every (first_sample_index, aac_frame) that is complete."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected 1-D int16 samples, got {pcm.dtype} with shape {pcm.shape}")
        self._pending = np.concatenate((self._pending, pcm))
        packets: list[tuple[int, bytes]] = []
        while len(self._pending) >= AAC_FRAME_SAMPLES:
            chunk, self._pending = self._pending[:AAC_FRAME_SAMPLES], self._pending[AAC_FRAME_SAMPLES:]
            packets += self._encode_chunk(chunk)
        return packets

    def flush(self) -> list[tuple[int, bytes]]:
        """Encode what is left (a short last frame) and drain the encoder."""
        packets = self._encode_chunk(self._pending) if len(self._pending) else []
        self._pending = self._pending[:0]
        return packets + [(p.pts, bytes(p)) for p in self._codec.encode(None)]

    def _encode_chunk(self, chunk: np.ndarray) -> list[tuple[int, bytes]]:
        planar = (chunk.astype(np.float32) / 32768.0).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(planar, format="fltp", layout="mono")
        frame.sample_rate = self._rate
        frame.time_base = self._codec.time_base
        frame.pts = self._pending_index
        self._pending_index += len(chunk)
        return [(p.pts, bytes(p)) for p in self._codec.encode(frame)]


class MicPipeline:
    """PCM buffers as read from ALSA -> timestamped AAC MediaPackets. No I/O, no threads."""

    def __init__(self, audio_format: AudioFormat,
                 resync_threshold_us: int = DEFAULT_RESYNC_THRESHOLD_US) -> None:
        self.sample_clock = SampleClock(audio_format.sample_rate_hz, resync_threshold_us)
        self._encoder = AacEncoder(audio_format)
        self._frame_duration_us = round(AAC_FRAME_SAMPLES * 1_000_000 / audio_format.sample_rate_hz)

    def feed(self, pcm: np.ndarray, read_done_us: int) -> list[MediaPacket]:
        self.sample_clock.on_capture(len(pcm), read_done_us)
        return self._packets(self._encoder.encode(pcm))

    def flush(self) -> list[MediaPacket]:
        return self._packets(self._encoder.flush())

    def _packets(self, encoded: list[tuple[int, bytes]]) -> list[MediaPacket]:
        return [MediaPacket(kind="audio", data=data, timestamp_us=self.sample_clock.timestamp_us(index),
                            duration_us=self._frame_duration_us, keyframe=True)
                for index, data in encoded]


class PiMicrophone(Microphone):
    """ALSA capture through `arecord` (hal/pi/alsa_capture.py says why), on thread
    "openbwc-mic"; the sink is called on that thread.

    start() returns only once audio is flowing, or raises BackendUnavailable in
    one line naming the device and ALSA's reason. If arecord dies while running,
    the thread logs one line and ends, and packets stop: the firmware's monitor
    reports mic_lost and restarts capture with stop(); start().
    """

    def __init__(self, alsa_device: str, clock: Clock, *, sample_rate_hz: int = 48_000,
                 bitrate_bps: int = 64_000, arecord_path: str = "arecord",
                 open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S, stop_timeout_s: float = 1.0,
                 resync_threshold_us: int = DEFAULT_RESYNC_THRESHOLD_US) -> None:
        resolved = shutil.which(arecord_path)
        if resolved is None:
            raise BackendUnavailable(f"{arecord_path!r} not found: the Pi microphone needs alsa-utils "
                                     "(apt install alsa-utils)")
        self._arecord = resolved
        self._device = alsa_device
        self._clock = clock
        self._format = AudioFormat(sample_rate_hz=sample_rate_hz, channels=1, bitrate_bps=bitrate_bps)
        self._open_timeout_s = open_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._resync_threshold_us = resync_threshold_us
        # One block per arecord period, so a block's read returns when its last
        # sample has just been captured: what SampleClock assumes.
        self._block_bytes = 2 * sample_rate_hz * PERIOD_TIME_US // 1_000_000
        # (thread, its stop flag, its arecord) while started; one flag per session,
        # so a thread that outlived stop() cannot be revived by a restart.
        self._session: tuple[threading.Thread, threading.Event, ArecordStream] | None = None

    @property
    def audio_format(self) -> AudioFormat:
        return self._format

    def start(self, sink: PacketSink) -> None:
        if self._session is not None:
            raise RuntimeError("PiMicrophone.start() called while already started")
        # Opened here, on the caller's thread, so a missing device is an error
        # the caller sees, not a traceback on a background thread.
        try:
            capture = ArecordStream(self._arecord, self._device, self._format.sample_rate_hz,
                                    open_timeout_s=self._open_timeout_s, on_warning=self._overrun)
        except (CaptureFailed, OSError) as exc:
            raise BackendUnavailable(f"ALSA capture device {self._device!r} did not open: {exc}") from None
        stopping = threading.Event()
        pipeline = MicPipeline(self._format, self._resync_threshold_us)
        thread = threading.Thread(target=self._run, args=(capture, pipeline, sink, stopping),
                                  name="openbwc-mic", daemon=True)
        thread.start()
        self._session = (thread, stopping, capture)

    def _run(self, capture: ArecordStream, pipeline: MicPipeline, sink: PacketSink,
             stopping: threading.Event) -> None:
        try:
            while (block := capture.read(self._block_bytes, stopping.is_set)) is not None:
                read_done_us = self._clock.monotonic_us()
                for packet in pipeline.feed(np.frombuffer(block, "<i2").astype(np.int16), read_done_us):
                    sink(packet)
            if stopping.is_set():
                for packet in pipeline.flush():
                    sink(packet)
            else:
                _log.error("microphone %r lost: %s; no audio until it is restarted",
                           self._device, capture.exit_reason())
        except Exception as exc:  # noqa: BLE001 - one line for the wearer's log, never a dead thread's traceback
            _log.error("microphone %r failed: %s; no audio until it is restarted", self._device, exc)
            _log.debug("microphone failure", exc_info=True)
        finally:
            capture.terminate(self._stop_timeout_s)
            capture.close()

    def _overrun(self, line: str) -> None:
        # Samples were lost; SampleClock re-anchors across the gap.
        _log.warning("microphone %r: ALSA %s", self._device, line)

    def stop(self) -> None:
        """Stop capture within about 2 x stop_timeout_s, even if ALSA is wedged."""
        session, self._session = self._session, None
        if session is None:
            return
        thread, stopping, capture = session
        stopping.set()
        capture.terminate(self._stop_timeout_s)
        thread.join(timeout=self._stop_timeout_s)
        if thread.is_alive():
            _log.error("microphone thread did not stop within %.1f s (its packet sink is blocked?)",
                       self._stop_timeout_s)


class PiSpeaker(Speaker):
    """Plays clips in order through `aplay`, on thread "openbwc-speaker"."""

    def __init__(self, alsa_device: str, *, aplay_path: str = "aplay", stall_grace_s: float = 5.0) -> None:
        resolved = shutil.which(aplay_path)
        if resolved is None:
            raise BackendUnavailable(f"{aplay_path!r} not found: the Pi speaker needs alsa-utils "
                                     "(apt install alsa-utils)")
        self._stall_grace_s = stall_grace_s
        self._argv = [resolved, "-q", "-D", alsa_device, "-t", "raw", "-f", "S16_LE", "-c", "1"]
        self._clips: queue.Queue[tuple[bytes, int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._unfinished = 0  # queued + playing; what is_playing() reports
        self.last_error: str | None = None  # the Speaker interface has no error channel yet
        # Started by the first play(), so a board that fails to build leaves no thread behind.
        self._worker: threading.Thread | None = None

    def play(self, samples: np.ndarray, sample_rate_hz: int, tag: str | None = None) -> None:
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError(f"expected 1-D int16 samples, got {samples.dtype} with shape {samples.shape}")
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        with self._lock:
            self._unfinished += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="openbwc-speaker", daemon=True)
                self._worker.start()
        self._clips.put((samples.astype("<i2", copy=False).tobytes(), sample_rate_hz))

    def is_playing(self) -> bool:
        with self._lock:
            return self._unfinished > 0

    def close(self) -> None:
        """Finish queued clips, then end the worker thread."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._clips.put(None)
            worker.join()

    def _run(self) -> None:
        while (clip := self._clips.get()) is not None:
            data, rate_hz = clip
            # A busy or vanished device can wedge aplay; give up a few seconds after the clip's end.
            timeout_s = len(data) / 2 / rate_hz + self._stall_grace_s
            try:
                result = subprocess.run(self._argv + ["-r", str(rate_hz)], input=data, timeout=timeout_s,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
                if result.returncode != 0:
                    self._fail(f"aplay exited {result.returncode}: "
                               f"{alsa_reason(result.stderr.decode(errors='replace'))}")
            except subprocess.TimeoutExpired:
                self._fail(f"aplay still running {timeout_s:.1f} s after starting a clip; killed")
            except OSError as exc:
                self._fail(f"aplay could not run: {exc}")
            finally:
                with self._lock:
                    self._unfinished -= 1

    def _fail(self, message: str) -> None:
        # Logged loudly and kept; raising here would kill the worker and every later cue.
        self.last_error = message
        _log.error("speaker: %s", message)
