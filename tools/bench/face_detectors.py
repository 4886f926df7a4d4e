"""Recall and precision of face detectors on simulator footage with faces in it
(docs/release-faces.md §4): the numbers the choice of detector was made on.

    PYTHONPATH=. python tools/bench/face_detectors.py make DIR     # clip -> bwc run --source -> bwc export
    PYTHONPATH=. python tools/bench/face_detectors.py score DIR    # a table, one row per detector

`make` needs the project's environment (it runs bwc); `score` only needs numpy, PyAV and
the detectors themselves, so MediaPipe (which brings its own OpenCV builds) is measured
from a separate venv: `/tmp/mpvenv/bin/python tools/bench/face_detectors.py score DIR`.

The rule: a detected box matches a true face if their intersection over union is at least
0.3, one detection per face, greedily in the order the detector gave them. Recall is matched
true faces over all true faces (one per face per exported frame); precision is matched
detections over all detections. Boxes as the detector gives them, before any margin.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import av
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MATCH_IOU = 0.3

SCENARIO = """\
description = "face footage: one event of about 5 s"
duration_s = 5

[camera]
width = {width}
height = {height}
fps = 10
keyframe_interval_s = 1

[policy]
pre_event_s = 1
segment_s = 2

[[at]]
t_s = 1
do = "button.double_press"
"""


def make(out_dir: str) -> str:
    sys.path.insert(0, os.path.join(REPO, "tests", "tool"))
    import face_footage
    os.makedirs(out_dir, exist_ok=True)
    clip = face_footage.face_clip(os.path.join(out_dir, "clip.mp4"))
    scenario = os.path.join(out_dir, "scenario.toml")
    with open(scenario, "w", encoding="utf-8") as f:
        f.write(SCENARIO.format(width=clip.camera_width, height=clip.camera_height))

    def bwc(*args: str) -> None:
        env = dict(os.environ, PYTHONPATH=REPO)
        subprocess.run([sys.executable, "-m", "tools.cli", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    keys, device, export = (os.path.join(out_dir, n) for n in ("keys", "device", "export"))
    bwc("keygen", "--out", keys)
    bwc("provision", "--device-id", "cam-faces-bench", "--custodian", os.path.join(keys, "custodian.pub"),
        "--out", device)
    bwc("run", "--device", device, "--hal", "sim", "--source", clip.path, "--scenario", scenario)
    bwc("export", os.path.join(device, "storage"), "--key", os.path.join(keys, "custodian.key"), "--out", export)
    mp4 = [os.path.join(export, n) for n in sorted(os.listdir(export)) if n.endswith(".mp4")][0]
    truth = face_footage.truth_for_export(mp4, clip)
    with open(os.path.join(out_dir, "truth.json"), "w", encoding="utf-8") as f:
        json.dump({"mp4": mp4, "faces": truth}, f)
    return mp4


# -- detectors ------------------------------------------------------------------------

def haar(cascade_file: str, scale_factor: float = 1.1, min_neighbours: int = 4):
    import cv2
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, cascade_file))

    def detect(rgb: np.ndarray) -> list:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return [tuple(int(v) for v in b) for b in cascade.detectMultiScale(
            grey, scaleFactor=scale_factor, minNeighbors=min_neighbours, minSize=(24, 24))]
    return detect


def mediapipe_detector(model_selection: int, min_confidence: float = 0.5):
    import mediapipe as mp
    detector = mp.solutions.face_detection.FaceDetection(model_selection=model_selection,
                                                         min_detection_confidence=min_confidence)

    def detect(rgb: np.ndarray) -> list:
        h, w = rgb.shape[:2]
        result = detector.process(np.ascontiguousarray(rgb))
        boxes = []
        for d in result.detections or []:
            r = d.location_data.relative_bounding_box
            boxes.append((round(r.xmin * w), round(r.ymin * h), round(r.width * w), round(r.height * h)))
        return boxes
    return detect


def mediapipe_tiled(model_selection: int, tile_px: int, min_confidence: float = 0.5):
    """MediaPipe on half-overlapping square tiles (plus the last tile flush with each edge),
    the boxes of all tiles merged, best score first, dropping any at IoU >= 0.3 with one
    kept: the model shrinks its input to 128 or 192 px, where a face a tenth of the frame
    wide is too small to find, while in a tile of about that size it is found. A face larger
    than a tile is cut by every tile; a real use would add the whole frame as a tile."""
    import mediapipe as mp
    detector = mp.solutions.face_detection.FaceDetection(model_selection=model_selection,
                                                         min_detection_confidence=min_confidence)

    def starts(size: int) -> list[int]:
        last = max(0, size - tile_px)
        return sorted(set(range(0, last, tile_px // 2)) | {last})

    def detect(rgb: np.ndarray) -> list:
        scored = []
        for y in starts(rgb.shape[0]):
            for x in starts(rgb.shape[1]):
                tile = np.ascontiguousarray(rgb[y:y + tile_px, x:x + tile_px])
                h, w = tile.shape[:2]
                for d in detector.process(tile).detections or []:
                    r = d.location_data.relative_bounding_box
                    scored.append((d.score[0], (x + round(r.xmin * w), y + round(r.ymin * h),
                                                round(r.width * w), round(r.height * h))))
        kept: list = []
        for _, box in sorted(scored, key=lambda s: -s[0]):
            if all(iou(box, k) < MATCH_IOU for k in kept):
                kept.append(box)
        return kept
    return detect


def _candidates() -> dict:
    out = {}
    try:
        import cv2  # noqa: F401
        out["opencv haar frontalface_alt (chosen)"] = lambda: haar("haarcascade_frontalface_alt.xml")
        out["opencv haar frontalface_alt + gap fill"] = "gapfill"
        out["opencv haar frontalface_default"] = lambda: haar("haarcascade_frontalface_default.xml")
        out["opencv haar frontalface_alt2"] = lambda: haar("haarcascade_frontalface_alt2.xml")
        out["opencv haar profileface"] = lambda: haar("haarcascade_profileface.xml")
    except ImportError:
        pass
    try:
        import mediapipe  # noqa: F401
        out["mediapipe 0.10 face_detection short range"] = lambda: mediapipe_detector(0)
        out["mediapipe 0.10 face_detection full range"] = lambda: mediapipe_detector(1)
        out["mediapipe 0.10 short range, 192 px tiles"] = lambda: mediapipe_tiled(0, 192)
        out["mediapipe 0.10 full range, 192 px tiles"] = lambda: mediapipe_tiled(1, 192)
        out["mediapipe 0.10 full range, 128 px tiles"] = lambda: mediapipe_tiled(1, 128)
    except ImportError:
        pass
    return out


# -- scoring --------------------------------------------------------------------------

def iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def score(found: list[list], truth: list[list]) -> tuple[float, float, int, int]:
    """(recall, precision, false boxes, frames where some visible face was missed)."""
    hit = missed = false = frames_missed = 0
    for boxes, faces in zip(found, truth):
        used: set[int] = set()
        frame_missed = False
        for face in faces:
            match = next((j for j, b in enumerate(boxes) if j not in used and iou(b, face) >= MATCH_IOU), None)
            if match is None:
                missed += 1
                frame_missed = True
            else:
                used.add(match)
                hit += 1
        false += len(boxes) - len(used)
        frames_missed += frame_missed
    recall = hit / max(1, hit + missed)
    precision = hit / max(1, hit + false)
    return recall, precision, false, frames_missed


def score_dir(out_dir: str) -> None:
    with open(os.path.join(out_dir, "truth.json"), encoding="utf-8") as f:
        doc = json.load(f)
    with av.open(doc["mp4"]) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    truth = doc["faces"]
    assert len(truth) == len(frames)
    print(f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"{sum(len(t) for t in truth)} visible faces; match: IoU >= {MATCH_IOU}")
    print(f"{'detector':45s} {'recall':>7s} {'precision':>9s} {'false':>5s} {'frames missed':>13s} {'ms/frame':>8s}")
    plain_alt = None
    for name, make_detector in _candidates().items():
        if make_detector == "gapfill":
            sys.path.insert(0, REPO)
            from tools.release.faces import fill_gaps
            found, ms = [list(b) for b in fill_gaps(plain_alt[0])], plain_alt[1]
        else:
            detect = make_detector()
            start = time.perf_counter()
            found = [detect(rgb) for rgb in frames]
            ms = (time.perf_counter() - start) * 1000 / len(frames)
            if plain_alt is None:
                plain_alt = (found, ms)
        recall, precision, false, frames_missed = score(found, truth)
        print(f"{name:45s} {recall:7.3f} {precision:9.3f} {false:5d} {frames_missed:13d} {ms:8.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("make", "score"))
    p.add_argument("dir")
    args = p.parse_args()
    if args.action == "make":
        print(make(args.dir))
    else:
        score_dir(args.dir)


if __name__ == "__main__":
    main()
