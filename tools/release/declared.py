"""Do the record's masks and spans follow from its operations? (docs/release.md §5, step 6)

The pixel comparison holds a release to the record's `masks`: whatever lies inside them
may differ. A record could therefore declare more than its operations did — a box in a
frame no operation names — and hide an edit there. So every box must be explained by an
operation: a fixed region's box in exactly the frames of its span (every one of them), a
tracked region's box only within its span, a face box only when the faces operation ran;
and the muted spans are exactly the audio operations'.
"""
from __future__ import annotations

MAX_LISTED = 20


def problems(record: dict, frame_times_s: dict[int, float]) -> list[str]:
    """`frame_times_s`: the original's frames that were compared (index -> timestamp),
    i.e. every frame a cut did not remove."""
    found: list[str] = []
    ops = [op for op in record["operations"] if isinstance(op, dict)]
    regions = [op for op in ops if op.get("op") == "region"]
    faces = [op for op in ops if op.get("op") == "faces"]
    audio = [[op.get("start_s"), op.get("end_s"), op.get("mode")] for op in ops if op.get("op") == "audio"]
    if audio != record["audio_spans"]:
        found.append("the record's audio_spans are not its audio operations'")
    masks = {int(entry[0]): entry for entry in record["masks"]}
    unpaired = sorted(set(masks) - set(frame_times_s))
    if unpaired:      # a frame a cut removed, or past the original's last: nothing to hold it to
        found.append(f"the record's masks name {len(unpaired)} frames the release does not show "
                     f"(first: frame {unpaired[0]}, removed by a cut or past the original's last)")
    for index, entry in masks.items():
        t_s = float(entry[1])
        for box in entry[2]:
            if not _explained(box, t_s, regions, faces):
                found.append(f"the record's masks for frame {index} ({t_s:.3f} s) hold {box[:4]} ({box[4]}, "
                             f"{box[5]}), which no operation explains")
            if len(found) >= MAX_LISTED:
                return found
    for number, op in enumerate(regions, start=1):
        if op.get("track"):
            continue
        wanted = [*op.get("box", []), op.get("style"), "region"]
        missing = [i for i, t_s in frame_times_s.items() if _within(op, t_s)
                   and wanted not in (masks[i][2] if i in masks else [])]
        if missing:
            found.append(f"region operation {number} ({op.get('start_s')}-{op.get('end_s')} s) is not in the "
                         f"record's masks of {len(missing)} of its frames (first: frame {missing[0]})")
    return found


def _within(op: dict, t_s: float) -> bool:
    start_s, end_s = op.get("start_s"), op.get("end_s")
    return isinstance(start_s, (int, float)) and isinstance(end_s, (int, float)) and start_s <= t_s < end_s


def _explained(box: list, t_s: float, regions: list[dict], faces: list[dict]) -> bool:
    style, source = box[4], box[5]
    if source == "face":
        return any(op.get("style") == style for op in faces)
    for op in regions:
        if op.get("style") == style and _within(op, t_s) and (op.get("track") or list(op.get("box", [])) == box[:4]):
            return True
    return False
