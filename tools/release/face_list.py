"""The face detection list: which face boxes to hide in which frame of one exported
event (docs/release-faces.md).

`bwc faces` writes it from the detector; a reviewer corrects it by hand (adds a box the
detector missed, moves a false one to `dropped`) and `bwc redact` reads it back through
`[faces] review_file`. Read strictly, because a list half-read would release a face the
reviewer meant to hide: every key is checked, boxes are whole pixels inside the frame,
frame indices strictly increase, and a list made for another original is refused, each
with one line naming the place.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass

from tools.release.files import read_bounded, unique_members

FORMAT = "openbwc-face-list"
VERSION = 1
SOURCES = ("detector", "reviewer")
# 2 hours at 30 fps with a few faces a frame is about 25 MB; anything much larger is not a list.
MAX_BYTES = 64_000_000
MAX_BOXES_PER_FRAME = 256
MAX_SIDE_PX = 100_000

Box = tuple[int, int, int, int]


class FaceListError(ValueError):
    """The face list is malformed or belongs to another original; nothing is used from it."""


@dataclass(frozen=True)
class FaceFrame:
    index: int
    pts_s: float
    boxes: tuple[tuple[int, int, int, int, str], ...]   # x, y, w, h, source


@dataclass(frozen=True)
class FaceList:
    detector: str
    mp4: str
    mp4_sha256: str
    width: int
    height: int
    frame_count: int
    frames: tuple[FaceFrame, ...]
    dropped: tuple[tuple[int, int, int, int, int], ...]   # frame index, x, y, w, h

    def boxes_at(self, index: int) -> list[Box]:
        """The boxes to hide in frame `index` (none if the list has no entry for it)."""
        frame = self._by_index().get(index)
        return [] if frame is None else [b[:4] for b in frame.boxes]

    def frame_at(self, index: int) -> FaceFrame | None:
        return self._by_index().get(index)

    def _by_index(self) -> dict[int, FaceFrame]:
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {f.index: f for f in self.frames}
            object.__setattr__(self, "_index", cached)
        return cached


def face_list_document(faces: FaceList) -> dict:
    return {"format": FORMAT, "version": VERSION, "detector": faces.detector,
            "original": {"mp4": faces.mp4, "mp4_sha256": faces.mp4_sha256, "width": faces.width,
                         "height": faces.height, "frames": faces.frame_count},
            "frames": [[f.index, f.pts_s, [list(b) for b in f.boxes]] for f in faces.frames],
            "dropped": [list(d) for d in faces.dropped]}


def face_list_bytes(faces: FaceList) -> bytes:
    """One frame a line, so a reviewer's editor and a diff show one frame at a time."""
    doc = face_list_document(faces)
    frames = doc.pop("frames")
    dropped = doc.pop("dropped")
    head = json.dumps(doc, sort_keys=True, indent=1, allow_nan=False)[:-2]
    lines = [json.dumps(f, separators=(", ", ": ")) for f in frames]
    body = head + ',\n "frames": [\n  ' + ",\n  ".join(lines) + "\n ],\n"
    body += ' "dropped": [' + ", ".join(json.dumps(d) for d in dropped) + "]\n}\n"
    return body.encode("utf-8")


def write_face_list(faces: FaceList, path: str) -> None:
    """Owner-only (a face list says where people are in evidence footage), never over an
    existing file, and whole or not at all: written beside `path` under a hidden name, then
    hard-linked into place (FileExistsError if `path` exists by then)."""
    directory, name = os.path.split(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)   # 0600 whatever the umask
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(face_list_bytes(faces))
            f.flush()
            os.fsync(f.fileno())
        os.link(temp, path)
    finally:
        os.unlink(temp)


def read_face_list(path: str, original_sha256: str | None = None) -> FaceList:
    """The list at `path`; with `original_sha256`, refused unless made for that MP4."""
    raw = read_bounded(path, MAX_BYTES, "a face list", FaceListError)
    return parse_face_list(raw, path, original_sha256)


def parse_face_list(raw: bytes, source: str, original_sha256: str | None = None) -> FaceList:
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_members,
                          parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FaceListError(f"{source}: not a face list (not valid JSON: {_short(exc)})") from None
    if not isinstance(data, dict):
        raise FaceListError(f"{source}: not a face list (not a JSON object)")
    _keys(data, {"format", "version", "detector", "original", "frames", "dropped"}, source)
    if data["format"] != FORMAT:
        raise FaceListError(f"{source}: format must be {FORMAT!r}, got {_show(data['format'])}")
    if data["version"] != VERSION or isinstance(data["version"], bool):
        raise FaceListError(f"{source}: version must be {VERSION}, got {_show(data['version'])}")
    detector = _text(data["detector"], f"{source}: detector")
    original = data["original"]
    if not isinstance(original, dict):
        raise FaceListError(f"{source}: original must be an object")
    _keys(original, {"mp4", "mp4_sha256", "width", "height", "frames"}, f"{source}: original")
    mp4 = _text(original["mp4"], f"{source}: original.mp4")
    sha = original["mp4_sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise FaceListError(f"{source}: original.mp4_sha256 must be 64 lowercase hex digits")
    width = _whole(original["width"], f"{source}: original.width", 2, MAX_SIDE_PX)
    height = _whole(original["height"], f"{source}: original.height", 2, MAX_SIDE_PX)
    frame_count = _whole(original["frames"], f"{source}: original.frames", 0, 10**9)
    if original_sha256 is not None and sha != original_sha256:
        raise FaceListError(f"{source}: made for another original ({mp4}, sha256 {sha[:12]}...), "
                            f"not this one (sha256 {original_sha256[:12]}...)")
    frames = _frames(data["frames"], width, height, frame_count, source)
    dropped = _dropped(data["dropped"], width, height, frame_count, source)
    hidden = {(f.index, *b[:4]) for f in frames for b in f.boxes}
    for entry in dropped:
        if entry in hidden:
            raise FaceListError(f"{source}: dropped box {list(entry[1:])} of frame {entry[0]} is also in "
                                "frames; a box is either hidden or dropped")
    return FaceList(detector, mp4, sha, width, height, frame_count, frames, dropped)


def _frames(value: object, width: int, height: int, frame_count: int, source: str) -> tuple[FaceFrame, ...]:
    if not isinstance(value, list):
        raise FaceListError(f"{source}: frames must be a list")
    if len(value) > frame_count:
        raise FaceListError(f"{source}: {len(value)} frame entries for an original of {frame_count} frames")
    out, last = [], -1
    for n, entry in enumerate(value):
        where = f"{source}: frames entry #{n + 1}"
        if not isinstance(entry, list) or len(entry) != 3:
            raise FaceListError(f"{where}: must be [index, pts_s, [boxes]]")
        index = _whole(entry[0], f"{where}: index", 0, frame_count - 1)
        if index <= last:
            raise FaceListError(f"{where}: frame index {index} does not follow {last}; indices must increase")
        last = index
        pts = entry[1]
        if isinstance(pts, bool) or not isinstance(pts, (int, float)) or not math.isfinite(pts) or pts < 0:
            raise FaceListError(f"{where}: pts_s must be a finite number of seconds >= 0")
        boxes = entry[2]
        if not isinstance(boxes, list) or len(boxes) > MAX_BOXES_PER_FRAME:
            raise FaceListError(f"{where}: boxes must be a list of at most {MAX_BOXES_PER_FRAME}")
        parsed = []
        for k, box in enumerate(boxes):
            if not isinstance(box, list) or len(box) != 5 or box[4] not in SOURCES:
                raise FaceListError(f"{where} (frame {index}) box #{k + 1}: must be [x, y, w, h, "
                                    f'"detector" or "reviewer"]')
            parsed.append((*_box(box[:4], width, height, f"{where} (frame {index}) box #{k + 1}"), box[4]))
        out.append(FaceFrame(index, float(pts), tuple(parsed)))
    return tuple(out)


def _dropped(value: object, width: int, height: int, frame_count: int, source: str) -> tuple:
    if not isinstance(value, list) or len(value) > frame_count * MAX_BOXES_PER_FRAME:
        raise FaceListError(f"{source}: dropped must be a list of [index, x, y, w, h]")
    out = []
    for n, entry in enumerate(value):
        where = f"{source}: dropped entry #{n + 1}"
        if not isinstance(entry, list) or len(entry) != 5:
            raise FaceListError(f"{where}: must be [index, x, y, w, h]")
        index = _whole(entry[0], f"{where}: index", 0, frame_count - 1)
        out.append((index, *_box(entry[1:], width, height, where)))
    return tuple(out)


def _box(values: list, width: int, height: int, where: str) -> Box:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise FaceListError(f"{where}: x, y, w, h must be whole pixel numbers")
    x, y, w, h = values
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
        raise FaceListError(f"{where}: box {values} is not inside the {width}x{height} frame")
    return x, y, w, h


def _keys(table: dict, expected: set[str], where: str) -> None:
    missing, extra = sorted(expected - set(table)), sorted(set(table) - expected)
    if missing:
        raise FaceListError(f"{where}: member {missing[0]!r} is missing")
    if extra:
        raise FaceListError(f"{where}: unknown member {_show(extra[0])}")


def _whole(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaceListError(f"{where} must be a whole number {low}..{high}, got {_show(value)}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise FaceListError(f"{where} must be non-empty text of at most 1000 characters")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:100]
