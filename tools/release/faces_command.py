"""`bwc faces` (docs/release-faces.md): parsing, messages and exit codes only.

    bwc faces EVENT.mp4 --out faces.json        detect, write the list for review
    bwc faces EVENT.mp4 --check faces.json      read a (reviewed) list strictly against EVENT.mp4
"""
from __future__ import annotations

import os
import sys

from tools.cli import EXIT_OK, EXIT_USAGE


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("faces", help="find faces in an exported event and write a detection list to review "
                                             "(docs/release-faces.md)")
    s.add_argument("export_mp4", metavar="EVENT.mp4", help="an MP4 that bwc export wrote")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", metavar="FACES.json", help="write the detection list here (never evidence storage)")
    what.add_argument("--check", metavar="FACES.json", help="check a reviewed list against EVENT.mp4 and summarise it")


def run(args) -> int:
    from tools.release.face_list import FaceListError
    from tools.release.faces import FaceDetectionError
    try:
        if args.check:
            return _check(args.export_mp4, args.check)
        return _detect(args.export_mp4, args.out)
    except (FaceListError, FaceDetectionError, _Refused) as exc:
        print(f"bwc faces: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _Refused(Exception):
    pass


def _detect(mp4_path: str, out_path: str) -> int:
    from tools.release.face_list import write_face_list
    from tools.release.faces import detect_video, face_list_for
    from tools.release.files import sha256_file
    from tools.release.redact import inside_evidence_storage
    if not os.path.isfile(mp4_path):
        raise _Refused(f"{mp4_path}: no such file")
    out_dir = os.path.dirname(os.path.abspath(out_path))
    storage = inside_evidence_storage(out_dir)
    if storage is not None:
        raise _Refused(f"{out_path}: inside evidence storage ({storage}); a face list is never written there")
    if not os.path.isdir(out_dir):
        raise _Refused(f"{out_dir}: no such directory")
    if os.path.lexists(out_path):
        raise _Refused(f"{out_path} already exists; refusing to overwrite a face list (it may hold a review)")
    digest = sha256_file(mp4_path)
    with _progress_bar(mp4_path) as tick:
        video = detect_video(mp4_path, progress=tick)
    faces = face_list_for(video, os.path.basename(mp4_path), digest)
    try:
        write_face_list(faces, out_path)
    except FileExistsError:
        raise _Refused(f"{out_path} already exists; refusing to overwrite a face list") from None
    except OSError as exc:
        raise _Refused(f"{out_path}: cannot write ({exc.strerror})") from None
    with_faces = sum(1 for f in faces.frames if f.boxes)
    boxes = sum(len(f.boxes) for f in faces.frames)
    print(f"face list: {out_path} ({faces.frame_count} frames, {with_faces} with faces, {boxes} boxes); "
          "review it, then name it as [faces] review_file")
    return EXIT_OK


def _check(mp4_path: str, list_path: str) -> int:
    from tools.release.face_list import read_face_list
    from tools.release.files import sha256_file
    if not os.path.isfile(mp4_path):
        raise _Refused(f"{mp4_path}: no such file")
    from tools.release.faces import face_summary
    faces = read_face_list(list_path, original_sha256=sha256_file(mp4_path))
    summary = face_summary(faces)
    print(f"face list: {list_path} is for {faces.mp4}: {faces.frame_count} frames, "
          f"{summary['frames_with_faces']} with faces; {summary['detector_boxes']} detector boxes, "
          f"{summary['reviewer_boxes']} added by a reviewer, {summary['dropped_boxes']} dropped")
    return EXIT_OK


class _progress_bar:
    """A rich bar over the video's frames on a terminal; nothing otherwise."""

    def __init__(self, mp4_path: str) -> None:
        self._bars = None
        if sys.stdout.isatty():
            import av
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            try:
                with av.open(mp4_path) as container:
                    total = container.streams.video[0].frames if container.streams.video else 0
            except (av.FFmpegError, OSError, ValueError):
                total = 0      # detect_video says what is wrong with the file, in one line
            self._bars = Progress(TextColumn("faces"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            self._task = self._bars.add_task("faces", total=total or None)

    def __enter__(self):
        if self._bars is None:
            return None
        self._bars.start()
        return lambda index, _t_s: self._bars.update(self._task, completed=index + 1)

    def __exit__(self, *exc) -> None:
        if self._bars is not None:
            self._bars.stop()
