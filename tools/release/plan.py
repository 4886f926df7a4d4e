"""The redaction plan: what a release copy hides, as a custodian wrote it (docs/release.md §2).

A TOML file. Parsed strictly: an unknown key, a wrong type, a number that is not finite or
a span that ends before it starts is refused with one line naming the place, because a
plan that is silently half-read would release what the custodian meant to hide. Times are
media seconds of the original event (the sidecar's `media_s` scale), boxes are pixels of
the original video. `check_against_event` then refuses what the event cannot hold.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass

from tools.release.files import read_bounded

PLAN_VERSION = 1
STYLES = ("blur", "mask")
AUDIO_MODES = ("mute", "tone")
PLAN_MAX_BYTES = 1_000_000       # a plan is a page of text; anything larger is not one
_MAX_ENTRIES = 10_000            # per list: a bound on the work a plan can ask for


class PlanError(ValueError):
    """The plan is malformed or asks for something the event cannot hold; nothing written."""


@dataclass(frozen=True)
class Region:
    """A rectangle hidden from start_s to end_s; with `track` it follows what it covers."""
    start_s: float
    end_s: float
    box: tuple[int, int, int, int]      # x, y, width, height in pixels of the original
    style: str = "blur"
    track: bool = False
    label: str = ""


@dataclass(frozen=True)
class AudioSpan:
    start_s: float
    end_s: float
    mode: str = "mute"
    tone_hz: float = 1000.0
    label: str = ""


@dataclass(frozen=True)
class Cut:
    """A time range left out of the release; the release shows a cut marker in its place."""
    start_s: float
    end_s: float
    reason: str


@dataclass(frozen=True)
class Faces:
    enabled: bool = False
    margin_fraction: float = 0.25       # added on each side, as a fraction of the face's size
    style: str = "blur"
    review_file: str | None = None      # a reviewed detection list (docs/release-faces.md)
    review_required: bool = False


@dataclass(frozen=True)
class Plan:
    released_by: str
    reason: str
    statement: str
    faces: Faces
    regions: tuple[Region, ...]
    audio: tuple[AudioSpan, ...]
    cuts: tuple[Cut, ...]


def read_plan(path: str) -> Plan:
    raw = read_bounded(path, PLAN_MAX_BYTES, "a redaction plan", PlanError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not UTF-8 text") from None
    return parse_plan(text, path)


def parse_plan(text: str, source: str) -> Plan:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{source}: not valid TOML ({exc})") from None
    return plan_from_data(data, source)


def plan_from_data(data: dict, source: str) -> Plan:
    """The plan a parsed TOML document states (what parse_plan does after tomllib)."""
    _keys(data, {"version", "release", "faces", "region", "audio", "cut"}, source)
    version = data.get("version")
    if version != PLAN_VERSION or isinstance(version, bool):
        raise PlanError(f"{source}: version must be {PLAN_VERSION}, got {version!r}")
    release = _table(data, "release", source, required=True)
    _keys(release, {"released_by", "reason", "statement"}, f"{source} [release]")
    faces = _parse_faces(_table(data, "faces", source), f"{source} [faces]", present="faces" in data)
    regions = tuple(_parse_region(e, f"{source} [[region]] #{i + 1}") for i, e in enumerate(_list(data, "region", source)))
    audio = tuple(_parse_audio(e, f"{source} [[audio]] #{i + 1}") for i, e in enumerate(_list(data, "audio", source)))
    cuts = tuple(_parse_cut(e, f"{source} [[cut]] #{i + 1}") for i, e in enumerate(_list(data, "cut", source)))
    ordered = sorted(cuts, key=lambda c: c.start_s)
    for a, b in zip(ordered, ordered[1:]):
        if b.start_s < a.end_s:
            raise PlanError(f"{source}: cuts {a.start_s}-{a.end_s} s and {b.start_s}-{b.end_s} s overlap; "
                            "write them as one cut")
    return Plan(released_by=_text(release, "released_by", f"{source} [release]", required=True),
                reason=_text(release, "reason", f"{source} [release]", required=True),
                statement=_text(release, "statement", f"{source} [release]", default=""),
                faces=faces, regions=regions, audio=audio, cuts=tuple(ordered))


def check_against_event(plan: Plan, media_s: float, width: int, height: int, source: str = "plan") -> None:
    """Refuse what this event cannot hold: a time outside it, a box outside the frame,
    or a face review the plan requires but does not name."""
    spans = [("[[region]]", r.start_s, r.end_s) for r in plan.regions]
    spans += [("[[audio]]", a.start_s, a.end_s) for a in plan.audio]
    spans += [("[[cut]]", c.start_s, c.end_s) for c in plan.cuts]
    for where, start_s, end_s in spans:
        if end_s > media_s:
            raise PlanError(f"{source}: {where} {start_s}-{end_s} s ends after the event, which is "
                            f"{media_s:.3f} s long")
    for region in plan.regions:
        x, y, w, h = region.box
        if x + w > width or y + h > height:
            raise PlanError(f"{source}: [[region]] box {list(region.box)} reaches outside the "
                            f"{width}x{height} frame")
    if plan.faces.review_required and plan.faces.review_file is None:
        raise PlanError(f"{source}: [faces] review_required is set but no review_file is named")


# -- the parts --------------------------------------------------------------------------

def _parse_faces(table: dict, where: str, present: bool) -> Faces:
    _keys(table, {"enabled", "margin_fraction", "style", "review_file", "review_required"}, where)
    margin = _number(table, "margin_fraction", where, default=0.25)
    if not 0 <= margin <= 2:
        raise PlanError(f"{where}: margin_fraction must be 0..2, got {margin}")
    review = table.get("review_file")
    if review is not None and (not isinstance(review, str) or not review.strip()):
        raise PlanError(f"{where}: review_file must be a file name")
    return Faces(enabled=_bool(table, "enabled", where, default=present),   # an empty [faces] turns them on
                 margin_fraction=margin, style=_choice(table, "style", STYLES, where, "blur"),
                 review_file=review, review_required=_bool(table, "review_required", where, default=False))


def _parse_region(entry: object, where: str) -> Region:
    entry = _entry(entry, where)
    _keys(entry, {"start_s", "end_s", "box", "style", "track", "label"}, where)
    start_s, end_s = _span(entry, where)
    box = entry.get("box")
    if (not isinstance(box, list) or len(box) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)):
        raise PlanError(f"{where}: box must be [x, y, width, height], four whole pixel numbers")
    x, y, w, h = box
    if x < 0 or y < 0 or w < 1 or h < 1 or max(box) > 100_000:
        raise PlanError(f"{where}: box {box} needs x, y >= 0 and a width and height of at least 1")
    return Region(start_s, end_s, (x, y, w, h), style=_choice(entry, "style", STYLES, where, "blur"),
                  track=_bool(entry, "track", where, default=False), label=_text(entry, "label", where, default=""))


def _parse_audio(entry: object, where: str) -> AudioSpan:
    entry = _entry(entry, where)
    _keys(entry, {"start_s", "end_s", "mode", "tone_hz", "label"}, where)
    start_s, end_s = _span(entry, where)
    tone_hz = _number(entry, "tone_hz", where, default=1000.0)
    if not 20 <= tone_hz <= 20_000:
        raise PlanError(f"{where}: tone_hz must be 20..20000, got {tone_hz}")
    return AudioSpan(start_s, end_s, mode=_choice(entry, "mode", AUDIO_MODES, where, "mute"),
                     tone_hz=tone_hz, label=_text(entry, "label", where, default=""))


def _parse_cut(entry: object, where: str) -> Cut:
    entry = _entry(entry, where)
    _keys(entry, {"start_s", "end_s", "reason"}, where)
    start_s, end_s = _span(entry, where)
    return Cut(start_s, end_s, reason=_text(entry, "reason", where, required=True))


# -- strict readers ---------------------------------------------------------------------

def _keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def _table(data: dict, key: str, where: str, required: bool = False) -> dict:
    value = data.get(key)
    if value is None:
        if required:
            raise PlanError(f"{where}: a [{key}] table is required")
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{where}: {key} must be a table ([{key}])")
    return value


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise PlanError(f"{where}: {key} must be a list of tables ([[{key}]])")
    if len(value) > _MAX_ENTRIES:
        raise PlanError(f"{where}: over {_MAX_ENTRIES} [[{key}]] entries")
    return value


def _entry(entry: object, where: str) -> dict:
    if not isinstance(entry, dict):
        raise PlanError(f"{where}: must be a table")
    return entry


def _number(table: dict, key: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if value is None:
        raise PlanError(f"{where}: {key} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(f"{where}: {key} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise PlanError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _span(entry: dict, where: str) -> tuple[float, float]:
    start_s, end_s = _number(entry, "start_s", where), _number(entry, "end_s", where)
    if start_s < 0:
        raise PlanError(f"{where}: start_s must not be negative, got {start_s}")
    if end_s <= start_s:
        raise PlanError(f"{where}: end_s ({end_s}) must be after start_s ({start_s})")
    return start_s, end_s


def _bool(table: dict, key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise PlanError(f"{where}: {key} must be true or false")
    return value


def _text(table: dict, key: str, where: str, required: bool = False, default: str = "") -> str:
    value = table.get(key)
    if value is None:
        if required:
            raise PlanError(f"{where}: {key} is required")
        return default
    if not isinstance(value, str) or (required and not value.strip()):
        raise PlanError(f"{where}: {key} must be {'non-empty ' if required else ''}text")
    if len(value) > 10_000:
        raise PlanError(f"{where}: {key} is over 10000 characters")
    return value


def _choice(table: dict, key: str, choices: tuple[str, ...], where: str, default: str) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise PlanError(f"{where}: {key} must be one of {', '.join(choices)}, got {value!r}")
    return value
