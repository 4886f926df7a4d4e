"""`bwc faces` (docs/release-faces.md): parsing, messages and exit codes only.

    bwc faces EVENT.mp4 --out faces.json        detect, write the list for review
    bwc faces EVENT.mp4 --edit faces.json --add 1.5-3.0:200,80,48,56 --drop 12:400,60,50,50 --out reviewed.json
    bwc faces EVENT.mp4 --check reviewed.json   read a (reviewed) list strictly against EVENT.mp4
"""
from __future__ import annotations

import os
import sys

from tools.cli import EXIT_OK, EXIT_USAGE


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("faces", help="find faces in an exported event and write a detection list to review "
                                             "(docs/release-faces.md)")
    s.add_argument("export_mp4", metavar="EVENT.mp4", help="an MP4 that bwc export wrote")
    s.add_argument("--out", metavar="FACES.json", help="write the detection (or, with --edit, the corrected) list "
                                                      "here; never into evidence storage, never over a file")
    s.add_argument("--check", metavar="FACES.json", help="check a reviewed list against EVENT.mp4 and summarise it")
    s.add_argument("--edit", metavar="FACES.json", help="correct this list with --add and --drop into --out")
    s.add_argument("--add", action="append", default=[], metavar="START_S-END_S:X,Y,W,H",
                   help="(with --edit) hide this box in every frame of the span, as the reviewer's")
    s.add_argument("--drop", action="append", default=[], metavar="INDEX:X,Y,W,H",
                   help="(with --edit) this box of frame INDEX is no face: move it to dropped")


def run(args) -> int:
    from tools.release.face_list import FaceListError
    from tools.release.faces import FaceDetectionError
    try:
        if args.check:
            if args.out or args.edit or args.add or args.drop:
                raise _Refused("--check reads a list; it takes no --out, --edit, --add or --drop")
            return _check(args.export_mp4, args.check)
        if not args.out:
            raise _Refused("say where the list goes with --out FACES.json (or check one with --check)")
        if args.edit:
            return _edit(args.export_mp4, args.edit, args.add, args.drop, args.out)
        if args.add or args.drop:
            raise _Refused("--add and --drop correct a list named with --edit")
        return _detect(args.export_mp4, args.out)
    except (FaceListError, FaceDetectionError, _Refused) as exc:
        print(f"bwc faces: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _Refused(Exception):
    pass


def _check_out(mp4_path: str, out_path: str) -> None:
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


def _write(faces, out_path: str) -> None:
    from tools.release.face_list import write_face_list
    try:
        write_face_list(faces, out_path)
    except FileExistsError:
        raise _Refused(f"{out_path} already exists; refusing to overwrite a face list") from None
    except OSError as exc:
        raise _Refused(f"{out_path}: cannot write ({exc.strerror})") from None


def _detect(mp4_path: str, out_path: str) -> int:
    from tools.release.faces import detect_video, face_list_for
    from tools.release.files import sha256_file
    _check_out(mp4_path, out_path)
    digest = sha256_file(mp4_path)
    with _progress_bar(mp4_path) as tick:
        video = detect_video(mp4_path, progress=tick)
    faces = face_list_for(video, os.path.basename(mp4_path), digest)
    _write(faces, out_path)
    with_faces = sum(1 for f in faces.frames if f.boxes)
    boxes = sum(len(f.boxes) for f in faces.frames)
    print(f"face list: {out_path} ({faces.frame_count} frames, {with_faces} with faces, {boxes} boxes); "
          "review it, then name it as [faces] review_file")
    return EXIT_OK


def _edit(mp4_path: str, list_path: str, adds: list[str], drops: list[str], out_path: str) -> int:
    from tools.release.face_list import read_face_list
    from tools.release.face_review import add_box, drop_box, parse_add, parse_drop
    from tools.release.files import sha256_file
    if not adds and not drops:
        raise _Refused("--edit needs at least one --add or --drop")
    _check_out(mp4_path, out_path)
    faces = read_face_list(list_path, original_sha256=sha256_file(mp4_path))
    for spec in drops:
        faces = drop_box(faces, *parse_drop(spec))
    added = 0
    for spec in adds:
        faces, n = add_box(faces, *parse_add(spec))
        added += n
    _write(faces, out_path)
    print(f"reviewed face list: {out_path} ({added} boxes added over {len(adds)} spans, {len(drops)} dropped); "
          f"{list_path} is unchanged")
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
