"""Test footage with faces in it, for automatic face redaction (issue 12).

Faces from scikit-image's bundled sample data (the astronaut's, and two of the
`lfw_subset` faces, upscaled, one of them coming closer) and one of `lfw_subset`'s
non-face patches move across scikit-image's brick texture, with a steady tone as the sound.

The clip is 640x320 and the simulated camera 480x270: docs/simulator.md's mapping scales
it to 480x240 (x 0.75) and letterboxes it 14 rows down (even offsets), so the ground truth
is mapped into the camera's pixels the same way (`camera_box`), with the simulator's own
layout code. Which clip frame a camera frame shows is read back from a code strip
(simulator/pattern.py) burned across the clip's bottom rows, where the camera's own strip
(at the top) does not reach: the ground truth of an exported frame is then the boxes of
that clip frame, whatever the camera's clock and the clip's rate did.

    face_clip(path) -> FaceClip                 the MP4 and the true face boxes of every clip frame
    truth_for_export(mp4, clip) -> [[boxes]]    per exported frame, the true face boxes it shows
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from simulator.pattern import overlay_code, read_frame, strip_height_px
from simulator.source_frames import _Layout as SourceLayout

CLIP_WIDTH, CLIP_HEIGHT = 640, 320
CAMERA_WIDTH, CAMERA_HEIGHT = 480, 270     # the simulated camera that films it (the scenario's size)
CLIP_FPS = 25
CLIP_S = 4.0
TONE_HZ, AUDIO_RATE_HZ = 440.0, 48_000

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceClip:
    path: str
    width: int              # the clip's
    height: int
    camera_width: int
    camera_height: int
    # Per clip frame (its index is the code burned into it): the true face boxes in clip pixels.
    faces: list[list[Box]]
    fps: int


@dataclass(frozen=True)
class _Mover:
    patch: np.ndarray            # grey, uint8
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    face: bool
    face_box: Box                # the face within the patch
    visible_from: float = 0.0    # it enters the picture this far into the clip
    end_scale: float = 1.0       # its size at the end, relative to its size at the start

    def at(self, fraction: float) -> tuple[int, int, np.ndarray, Box]:
        """Top left, the patch and the face box within it, `fraction` of the way through."""
        x = self.start_xy[0] + (self.end_xy[0] - self.start_xy[0]) * fraction
        y = self.start_xy[1] + (self.end_xy[1] - self.start_xy[1]) * fraction
        scale = 1.0 + (self.end_scale - 1.0) * fraction
        if scale == 1.0:
            return round(x), round(y), self.patch, self.face_box
        h, w = self.patch.shape
        sw, sh = round(w * scale), round(h * scale)
        fx, fy, fw, fh = self.face_box
        box = (round(fx * sw / w), round(fy * sh / h), round(fw * sw / w), round(fh * sh / h))
        return round(x), round(y), _resize(self.patch, sw, sh), box


def _resize(grey: np.ndarray, width: int, height: int) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(grey), format="gray")
    return frame.reformat(width=width, height=height, format="gray", interpolation="BICUBIC").to_ndarray()


def _movers() -> list[_Mover]:
    from skimage import data
    from skimage.color import rgb2gray
    astronaut = (rgb2gray(data.astronaut()) * 255).astype(np.uint8)
    # Her head and shoulders; the face itself is about x 175-265, y 60-175 of the 512x512.
    head_w, head_h = 120, 146
    head = _resize(astronaut[20:240, 130:310], head_w, head_h)
    face_in_head = (round((175 - 130) * head_w / 180), round((60 - 20) * head_h / 220),
                    round(90 * head_w / 180), round(115 * head_h / 220))
    lfw = (data.lfw_subset() * 255).astype(np.uint8)     # 0-99 faces, 100-199 non-faces, 25x25

    # An lfw crop is the face itself; some of the surrounding grey is added so the
    # detector sees a head rather than a face pressed against the patch's edge.
    def framed(image: np.ndarray, size: int) -> tuple[np.ndarray, Box]:
        big = _resize(image, size, size)
        out = np.full((size * 3 // 2, size * 5 // 4), int(np.median(image) * 0.6), np.uint8)
        top, left = size // 4, size // 8
        out[top:top + size, left:left + size] = big
        return out, (left, top, size, size)
    a, a_box = framed(lfw[0], 64)
    b, b_box = framed(lfw[7], 64)
    # Clip pixels. The camera's strip covers the clip's top ~30 rows, the clip's code its
    # bottom 48: the patches stay between, in two lanes, and never overlap one another.
    return [
        _Mover(head, (10, 32), (260, 36), True, face_in_head),
        _Mover(_resize(lfw[130], 66, 66), (560, 50), (440, 60), False, (0, 0, 66, 66)),
        # Coming closer: 64 px growing to 96 px (48 to 72 in the camera).
        _Mover(a, (530, 160), (420, 128), True, a_box, end_scale=1.5),
        _Mover(b, (10, 176), (170, 176), True, b_box, visible_from=0.4),
    ]


def _background() -> np.ndarray:
    from skimage import data
    brick = data.brick()                                   # 512x512 grey
    return (_resize(brick, CLIP_WIDTH, CLIP_HEIGHT).astype(np.int16) // 2 + 70).astype(np.uint8)


def face_picture(index: int, frames: int, movers: list[_Mover], background: np.ndarray) -> tuple[np.ndarray, list[Box]]:
    """Clip frame `index` (yuv420p planes as PyAV wants them) and its true face boxes."""
    luma = background.copy()
    boxes = []
    fraction = index / max(1, frames - 1)
    for mover in movers:
        if fraction < mover.visible_from:
            continue
        x, y, patch, (fx, fy, fw, fh) = mover.at(fraction)
        h, w = patch.shape
        luma[y:y + h, x:x + w] = patch
        if mover.face:
            boxes.append((x + fx, y + fy, fw, fh))
    # overlay_code wants room for two strips (its check for a camera picture); only the
    # first is the code, and only it goes into the clip's bottom rows.
    strip = strip_height_px(CLIP_WIDTH)
    code = np.zeros((2 * strip, CLIP_WIDTH), np.uint8)
    overlay_code(code, index, 0)
    luma[CLIP_HEIGHT - strip:] = code[:strip]
    yuv = np.full((CLIP_HEIGHT * 3 // 2, CLIP_WIDTH), 128, np.uint8)
    yuv[:CLIP_HEIGHT] = luma
    return yuv, boxes


def face_clip(path: str, seconds: float = CLIP_S) -> FaceClip:
    """Write the clip (H.264 + AAC tone) to `path`; the true face boxes of every frame."""
    movers, background = _movers(), _background()
    frames = round(seconds * CLIP_FPS)
    truth = []
    t = np.arange(round(seconds * AUDIO_RATE_HZ)) / AUDIO_RATE_HZ
    tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=CLIP_FPS)
        video.width, video.height, video.pix_fmt = CLIP_WIDTH, CLIP_HEIGHT, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, CLIP_FPS)
        video.options = {"preset": "ultrafast", "crf": "14", "bf": "0"}
        audio = container.add_stream("aac", rate=AUDIO_RATE_HZ)
        audio.layout = "mono"
        for i in range(frames):
            yuv, boxes = face_picture(i, frames, movers, background)
            truth.append(boxes)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, CLIP_FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, len(tone), 1024):
            block = tone[None, start:start + 1024]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE_HZ, start, Fraction(1, AUDIO_RATE_HZ)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return FaceClip(str(path), CLIP_WIDTH, CLIP_HEIGHT, CAMERA_WIDTH, CAMERA_HEIGHT, truth, CLIP_FPS)


def _layout(clip: FaceClip) -> SourceLayout:
    return SourceLayout(clip.width, clip.height, Fraction(1), 0, clip.camera_width, clip.camera_height)


def camera_box(box: Box, clip: FaceClip) -> Box:
    """A clip box in the camera's pixels, rounded outwards (the true face is all inside it)."""
    layout = _layout(clip)
    sx, sy = layout.fit_w / clip.width, layout.fit_h / clip.height
    x, y, w, h = box
    x0, y0 = layout.x0 + math.floor(x * sx), layout.y0 + math.floor(y * sy)
    x1, y1 = layout.x0 + math.ceil((x + w) * sx), layout.y0 + math.ceil((y + h) * sy)
    return x0, y0, x1 - x0, y1 - y0


def clip_frame_shown(luma: np.ndarray, clip: FaceClip) -> int | None:
    """Which clip frame a camera frame (its luma plane) shows: the clip's bottom code strip,
    where the layout put it."""
    layout = _layout(clip)
    bottom = layout.y0 + layout.fit_h
    code = read_frame(luma[bottom - strip_height_px(layout.fit_w):bottom, layout.x0:layout.x0 + layout.fit_w])
    return None if code is None else code[0]


def truth_for_export(mp4_path: str, clip: FaceClip) -> list[list[Box]]:
    """Per frame of an exported event filmed from `clip`: the true face boxes it shows, in
    the camera's pixels. A frame whose clip code cannot be read fails loudly: a ground
    truth guessed is no truth."""
    truth = []
    with av.open(str(mp4_path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            assert (frame.width, frame.height) == (clip.camera_width, clip.camera_height), "not this camera's size"
            shown = clip_frame_shown(frame.reformat(format="yuv420p").to_ndarray()[:frame.height], clip)
            assert shown is not None and 0 <= shown < len(clip.faces), f"exported frame {i}: no clip code"
            truth.append([camera_box(b, clip) for b in clip.faces[shown]])
    return truth
