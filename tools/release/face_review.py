"""A reviewer's corrections to a face list, as `bwc faces --edit` applies them
(docs/release-faces.md §2): add a box the detector missed over a span of media time, and
drop a box that is no face. Each returns a new list; the old one is never changed, so the
detector's list and the reviewed one can both be kept and compared.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace

from tools.release.face_list import Box, FaceFrame, FaceList, FaceListError

_ADD = re.compile(r"^([0-9.]+)-([0-9.]+):(\d+),(\d+),(\d+),(\d+)$")
_DROP = re.compile(r"^(\d+):(\d+),(\d+),(\d+),(\d+)$")


def parse_add(spec: str) -> tuple[float, float, Box]:
    """`START_S-END_S:X,Y,W,H`, e.g. `1.5-3.0:200,80,48,56`."""
    match = _ADD.match(spec.strip())
    if match is None:
        raise FaceListError(f"--add {spec!r}: expected START_S-END_S:X,Y,W,H (seconds, whole pixels)")
    try:
        start_s, end_s = float(match[1]), float(match[2])
    except ValueError:
        raise FaceListError(f"--add {spec!r}: {match[1]!r} or {match[2]!r} is not a number of seconds") from None
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s <= start_s:
        raise FaceListError(f"--add {spec!r}: the span must end after it starts")
    return start_s, end_s, tuple(int(v) for v in match.groups()[2:])


def parse_drop(spec: str) -> tuple[int, Box]:
    """`INDEX:X,Y,W,H`: the frame index and the box exactly as the list has it."""
    match = _DROP.match(spec.strip())
    if match is None:
        raise FaceListError(f"--drop {spec!r}: expected INDEX:X,Y,W,H (a frame index and the box as listed)")
    return int(match[1]), tuple(int(v) for v in match.groups()[1:])


def add_box(faces: FaceList, start_s: float, end_s: float, box: Box) -> tuple[FaceList, int]:
    """The list with `box` added, as the reviewer's, to every listed frame whose time is in
    [start_s, end_s); and how many frames got it. A span on no listed frame is refused."""
    x, y, w, h = box
    if w < 1 or h < 1 or x + w > faces.width or y + h > faces.height:
        raise FaceListError(f"--add box {list(box)} is not inside the {faces.width}x{faces.height} frame")
    frames, added = [], 0
    for frame in faces.frames:
        if start_s <= frame.pts_s < end_s and box not in [b[:4] for b in frame.boxes]:
            frame = replace(frame, boxes=frame.boxes + ((*box, "reviewer"),))
            added += 1
        frames.append(frame)
    if not any(start_s <= f.pts_s < end_s for f in faces.frames):
        raise FaceListError(f"--add {start_s}-{end_s} s: no frame of the list is in that span")
    return replace(faces, frames=tuple(frames)), added


def drop_box(faces: FaceList, index: int, box: Box) -> FaceList:
    """The list with `box` taken out of frame `index` and recorded in `dropped`."""
    frame = faces.frame_at(index)
    if frame is None or box not in [b[:4] for b in frame.boxes]:
        listed = [] if frame is None else [list(b[:4]) for b in frame.boxes]
        raise FaceListError(f"--drop {index}:{','.join(map(str, box))}: frame {index} has no such box "
                            f"(it has {listed})")
    kept = FaceFrame(frame.index, frame.pts_s, tuple(b for b in frame.boxes if b[:4] != box))
    frames = tuple(kept if f.index == index else f for f in faces.frames)
    return replace(faces, frames=frames, dropped=faces.dropped + ((index, *box),))
