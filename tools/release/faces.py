"""Automatic face detection for release copies (docs/release-faces.md).

The detector is OpenCV's Haar cascade `haarcascade_frontalface_alt.xml`, the model file
the opencv wheel ships (`cv2.data.haarcascades`): nothing is downloaded, and the same
wheel version gives the same boxes. MediaPipe's bundled face detector, measured on the
same footage (tools/bench/face_detectors.py; the table is in docs/release-faces.md),
found a third of the faces on the whole frame and tied the cascade only when run on
tiles, with a second OpenCV build and jax besides: the cascade was kept.

A detector misses a face now and then for a frame or two (motion blur, a turn of the
head) while finding it either side; so a face found in frames i and j at overlapping
places, missed in the at most GAP_FILL_FRAMES frames between, is carried through them, its
box interpolated. A box
found in no neighbouring frame is kept as it is: a false box costs a blurred patch of
wall, a missed face costs a person's privacy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tools.release.face_list import Box, FaceFrame, FaceList, FaceListError

CASCADE_FILE = "haarcascade_frontalface_alt.xml"
# Tuned on the test footage (docs/release-faces.md §4), where 1.05 to 1.2 and 3 or 4
# neighbours all found every face: 1.1 keeps the steps between sizes fine enough for a face
# between two of them at less than half 1.05's time; 4 neighbours is one more vote against
# a false box (frontalface_default at 3 gave some on earlier footage).
SCALE_FACTOR = 1.1
MIN_NEIGHBOURS = 4
MIN_FACE_PX = 24            # the cascade's own window: nothing smaller can be found
# Frames wider than this are scaled down for detection (boxes scaled back up): at 1280x720
# a frame takes 373 ms at full size and 89 ms at half (measured), and the smallest face
# found is then 48 px, about a face at 4 m on a body camera's wide lens. A reviewer adds
# any smaller one (docs/release-faces.md).
DETECT_WIDTH_PX = 640
GAP_FILL_FRAMES = 2
MATCH_IOU = 0.3             # two boxes in nearby frames are one face if they overlap this much


class FaceDetectionError(Exception):
    """The detector cannot run (no OpenCV, no cascade file, an unreadable video)."""


def _cv2():
    try:
        import cv2
    except ImportError:
        raise FaceDetectionError("face detection needs OpenCV: pip install 'opencv-contrib-python-headless<5'") from None
    return cv2


def detector_version() -> str:
    """What found the boxes, for the face list and the release record."""
    cv2 = _cv2()
    return (f"opencv {cv2.__version__} {CASCADE_FILE} scale_factor {SCALE_FACTOR} "
            f"min_neighbours {MIN_NEIGHBOURS} min_face_px {MIN_FACE_PX} at width {DETECT_WIDTH_PX}; "
            f"gap fill {GAP_FILL_FRAMES} frames "
            f"at iou {MATCH_IOU}")


class FaceDetector:
    """One frame at a time: an RGB frame -> face boxes (x, y, w, h)."""

    def __init__(self) -> None:
        cv2 = _cv2()
        path = os.path.join(cv2.data.haarcascades, CASCADE_FILE)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FaceDetectionError(f"{path}: the OpenCV cascade file cannot be loaded")
        self._cv2 = cv2

    def detect(self, rgb: np.ndarray) -> list[Box]:
        cv2 = self._cv2
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = 1.0
        if grey.shape[1] > DETECT_WIDTH_PX:
            scale = grey.shape[1] / DETECT_WIDTH_PX
            grey = cv2.resize(grey, (DETECT_WIDTH_PX, round(grey.shape[0] / scale)), interpolation=cv2.INTER_AREA)
        found = self._cascade.detectMultiScale(grey, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBOURS,
                                               minSize=(MIN_FACE_PX, MIN_FACE_PX))
        height, width = rgb.shape[:2]
        boxes = []
        for x, y, w, h in found:
            x0, y0 = int(x * scale), int(y * scale)
            x1, y1 = min(width, int(np.ceil((x + w) * scale))), min(height, int(np.ceil((y + h) * scale)))
            boxes.append((x0, y0, x1 - x0, y1 - y0))
        return sorted(boxes)


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


def fill_gaps(per_frame: list[list[Box]], gap_frames: int = GAP_FILL_FRAMES) -> list[list[Box]]:
    """Carry a face through up to `gap_frames` frames where it was missed, if it was found
    on both sides at overlapping places (the box interpolated between the two)."""
    filled = [list(boxes) for boxes in per_frame]
    n = len(per_frame)
    for i in range(n):
        for j in range(i + 2, min(n, i + gap_frames + 2)):
            for before in per_frame[i]:
                after = max(per_frame[j], key=lambda b: iou(before, b), default=None)
                if after is None or iou(before, after) < MATCH_IOU:
                    continue
                for k in range(i + 1, j):
                    if any(iou(before, b) >= MATCH_IOU or iou(after, b) >= MATCH_IOU for b in filled[k]):
                        continue
                    share = (k - i) / (j - i)
                    filled[k].append(tuple(round(p + (q - p) * share) for p, q in zip(before, after)))
    return [sorted(boxes) for boxes in filled]


@dataclass(frozen=True)
class DetectedVideo:
    width: int
    height: int
    pts_s: list[float]
    boxes: list[list[Box]]


def detect_video(mp4_path: str, progress: Callable[[int, float], None] | None = None) -> DetectedVideo:
    """Every frame of the video's first stream, decoded in order, through the detector,
    then the gap fill. `progress(frame_index, pts_s)` after each frame."""
    import av
    detector = FaceDetector()
    pts_s, found = [], []
    size = None
    try:
        with av.open(mp4_path) as container:
            if not container.streams.video or container.streams.video[0].codec_context is None:
                raise FaceDetectionError(f"{mp4_path}: no decodable video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                # The first frame's size is the video's: a damaged file may say otherwise in
                # its header, and a list for a size the frames do not have would be refused later.
                if size is None:
                    size = (frame.width, frame.height)
                    if min(size) < 2:
                        raise FaceDetectionError(f"{mp4_path}: a {size[0]}x{size[1]} video cannot be redacted")
                elif (frame.width, frame.height) != size:
                    raise FaceDetectionError(f"{mp4_path}: frame {len(found)} is {frame.width}x{frame.height}, "
                                             f"the first was {size[0]}x{size[1]}; the video is damaged")
                t_s = round(float(frame.pts * frame.time_base), 6) if frame.pts is not None else 0.0
                found.append(_inside(detector.detect(frame.to_ndarray(format="rgb24")), *size))
                pts_s.append(t_s)
                if progress is not None:
                    progress(len(found) - 1, t_s)
    except (av.FFmpegError, OSError, ValueError) as exc:
        # ValueError: PyAV reads a damaged file's metadata strings as UTF-8 (UnicodeDecodeError).
        raise FaceDetectionError(f"{mp4_path}: cannot decode the video ({_one_line(exc)})") from None
    if size is None:
        raise FaceDetectionError(f"{mp4_path}: no decodable video frame")
    return DetectedVideo(size[0], size[1], pts_s, [_inside(b, *size) for b in fill_gaps(found)])


def _one_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _inside(boxes: list[Box], width: int, height: int) -> list[Box]:
    """Boxes clipped to the frame (interpolation and the cascade's edge windows may not be)."""
    out = []
    for x, y, w, h in boxes:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def face_list_for(video: DetectedVideo, mp4_name: str, mp4_sha256: str) -> FaceList:
    """The detection list of a detected video: one entry per frame, boxes marked "detector"."""
    frames = tuple(FaceFrame(i, t, tuple((*b, "detector") for b in boxes))
                   for i, (t, boxes) in enumerate(zip(video.pts_s, video.boxes)))
    return FaceList(detector_version(), mp4_name, mp4_sha256, video.width, video.height, len(frames),
                    frames, ())


# The time a list's pts_s and a decoded frame's may differ by (the list rounds to 1 µs).
PTS_TOLERANCE_S = 0.0005


def face_source(faces: FaceList) -> Callable[[int, float, np.ndarray], list[Box]]:
    """A FaceSource (tools/release/media.py) that hides a list's boxes: frame `index` gets
    that entry's boxes. A frame whose time or size is not the list's refuses the list:
    a list made for other frames would hide the wrong places."""
    def boxes(index: int, t_s: float, rgb: np.ndarray) -> list[Box]:
        if rgb.shape[1] != faces.width or rgb.shape[0] != faces.height:
            raise FaceListError(f"the face list is for {faces.width}x{faces.height} frames, this video's are "
                                f"{rgb.shape[1]}x{rgb.shape[0]}")
        if index >= faces.frame_count:
            raise FaceListError(f"the face list covers {faces.frame_count} frames; this video has more")
        entry = faces.frame_at(index)
        if entry is None:
            return []
        if abs(entry.pts_s - t_s) > PTS_TOLERANCE_S:
            raise FaceListError(f"the face list's frame {index} is at {entry.pts_s:.6f} s, the video's at "
                                f"{t_s:.6f} s; it was made for other frames")
        return [b[:4] for b in entry.boxes]
    return boxes


def faces_for_release(mp4_path: str, mp4_sha256: str, review_file: str | None = None,
                      review_required: bool = False,
                      progress: Callable[[int, float], None] | None = None) -> FaceList:
    """The face list a release hides: the reviewed one if the plan names it (refused if made
    for another original), else the detector's, run now over every frame. A plan that
    requires a review and names none is refused."""
    from tools.release.face_list import read_face_list
    if review_file is not None:
        return read_face_list(review_file, original_sha256=mp4_sha256)
    if review_required:
        raise FaceListError("[faces] review_required is set but no review_file is named")
    return face_list_for(detect_video(mp4_path, progress), os.path.basename(mp4_path), mp4_sha256)


def face_summary(faces: FaceList) -> dict:
    """What the release record can say about the faces hidden: who found them, and how far
    a reviewer changed the detector's list."""
    sources = [b[4] for f in faces.frames for b in f.boxes]
    return {"detector": faces.detector, "frames_with_faces": sum(1 for f in faces.frames if f.boxes),
            "detector_boxes": sources.count("detector"), "reviewer_boxes": sources.count("reviewer"),
            "dropped_boxes": len(faces.dropped)}
