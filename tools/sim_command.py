"""`bwc sim --device DEVICE_DIR [--source VIDEO] [--port N] …`: the firmware on the simulated
board in real time, seen and driven from a page in the browser (docs/sim-live.md, SIM-4)."""
from __future__ import annotations

import os
import socket
import sys
import threading

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_PORT = 8470
GRACE_S = 1.0


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("sim", help="(sim) the firmware in real time, seen and driven from a browser page")
    s.add_argument("--device", required=True, metavar="DEVICE_DIR", help="a provisioned device (bwc provision)")
    s.add_argument("--source", metavar="VIDEO", help="what the camera sees and the room sounds like")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one")
    s.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    s.add_argument("--key", metavar="CUSTODIAN.key", help="custodian secret key for the page's Verify and export")
    s.add_argument("--pod", action="append", default=[], metavar="POD_ID", help="a paired control pod in the world")
    s.add_argument("--trigger", action="append", default=[], metavar="NAME", help="a trigger input line")
    s.add_argument("--out", metavar="EXPORT_DIR", help="where Verify and export writes (default DEVICE_DIR/sim-export)")


def _usage(message: str) -> int:
    print(f"bwc sim: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_names(args) -> str | None:
    from device.link.frame import check_pod_id
    from simulator.live_log import StepError, parse_live_step
    for pod_id in args.pod:
        problem = check_pod_id(pod_id)
        if problem:
            return f"--pod {pod_id!r}: {problem}"
    if len(set(args.pod)) != len(args.pod):
        return "--pod: a pod is named twice"
    for name in args.trigger:
        try:
            parse_live_step({"do": "trigger.on", "name": name}, 0.0)
        except StepError as exc:
            return f"--trigger {name!r}: {exc}"
    return None


def run(args) -> int:
    from device.config import ConfigError, load_identity, load_policy
    from hal.devicelock import DeviceLock, DeviceLockError
    from tools.run import check_signing_key

    from tools.sim_web.app import is_loopback
    if not is_loopback(args.host):
        return _usage(f"--host {args.host}: the page drives a camera and reads its footage, so it is served "
                      "on a loopback address only (127.0.0.0/8, ::1, localhost)")
    if not 0 <= args.port <= 65535:
        return _usage(f"--port {args.port}: give 0..65535")
    if args.source and not os.path.isfile(args.source):
        return _usage(f"--source {args.source}: no such file")
    if args.key and not os.path.isfile(args.key):
        return _usage(f"--key {args.key}: no such file")
    problem = _check_names(args)
    if problem:
        return _usage(problem)
    try:
        identity = load_identity(args.device)
        policy = load_policy(os.path.join(args.device, "policy.toml"))
        check_signing_key(args.device, identity)
    except (ConfigError, OSError) as exc:
        return _usage(str(exc))
    lock = DeviceLock(args.device)
    try:
        lock.acquire()
    except DeviceLockError as exc:
        return _usage(str(exc))
    try:
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # The page's controls are small requests: answered without Nagle's ~40 ms wait.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((args.host, args.port))
            # Listening before the address is printed: a page opened at once is queued, not refused.
            sock.listen(128)
        except OSError as exc:
            return _usage(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return _serve(args, identity, policy, sock)
    finally:
        lock.release()


def _serve(args, identity, policy, sock: socket.socket) -> int:
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            closing.set()   # the page's event streams end, so the shutdown need not wait
            # uvicorn raises the signal again once it has shut down, killing the process
            # before the run is ended cleanly; Ctrl-C is the normal end here (exit 0).
            if hasattr(self, "_captured_signals"):
                self._captured_signals.clear()

    from simulator.camera import SourceVideoError
    from simulator.live import LiveSim
    from tools.run import _log_to_stderr
    from tools.sim_web.app import build_app

    _log_to_stderr("sim")
    try:
        live = LiveSim(identity, policy, args.device, source_path=args.source, pods=tuple(args.pod),
                       triggers=tuple(args.trigger))
    except SourceVideoError as exc:
        sock.close()
        return _usage(str(exc))
    try:
        closing = threading.Event()
        app = build_app(live, args.key, args.out, closing=closing)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"bwc sim: the camera is at http://{shown}:{port}/ (Ctrl-C ends the run)", flush=True)
        # Event streams never end by themselves: a shutdown gives them a moment, then closes them.
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", log_level="warning",
                                timeout_graceful_shutdown=GRACE_S)
        _Server(config).run(sockets=[sock])
    finally:
        live.close()
    failures = [inst.failure for inst in live.device.instances if inst.failure is not None]
    for failure in failures:
        print(f"bwc sim: recording failed: {failure}", file=sys.stderr)
    print(f"bwc sim: run ended after {live.now_s():.1f} s; storage in {live.storage_dir}")
    return EXIT_FAILED if failures else EXIT_OK
