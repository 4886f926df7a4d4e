"""The interactive simulator's HTTP application (docs/sim-live.md), on Starlette like the
evidence intake (tools/intake/app.py), over one LiveSim (simulator/live.py).

It drives a camera and can export its footage, so it only answers a page of its own
origin: requests must name the loopback host they were sent to (no DNS rebinding), and
controls must be JSON (a cross-site form or a no-CORS fetch cannot send that without a
preflight this app never allows).
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import threading
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from simulator.live import LiveError, LiveSim
from tools.sim_web.media import jpeg_from_yuv420p, wav_bytes

MAX_BODY_BYTES = 16 * 1024
FEED_INTERVAL_S = 0.05     # how often an event stream looks for news: the page's latency floor
STATUS_INTERVAL_S = 0.25   # a status message at least this often


def is_loopback(host: str) -> bool:
    """A name or address of this machine only: localhost (any case, a trailing dot
    allowed) or a loopback address (127.0.0.0/8, ::1), IPv6 with or without brackets."""
    name = host.strip().rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Frames:
    """The newest picture as JPEG, encoded once per picture however many pages poll it."""

    def __init__(self, live: LiveSim) -> None:
        self._live = live
        self._lock = threading.Lock()
        self._key: tuple[int, int | None] | None = None
        self._jpeg = b""

    def jpeg(self) -> tuple[bytes, int] | None:
        """(JPEG, capture time in monotonic µs) of the newest picture, or None."""
        found = self._live.picture()
        if found is None:
            return None
        picture, at_us = found
        with self._lock:
            key = (id(picture), at_us)
            if key != self._key:
                self._jpeg, self._key = jpeg_from_yuv420p(picture), key
            return self._jpeg, at_us


class _Exporter:
    """Verify and export after the run (POST /api/export), once at a time."""

    def __init__(self, live: LiveSim, key_path: str | None, out_dir: str) -> None:
        self._live, self._key_path, self.out_dir = live, key_path, os.path.abspath(out_dir)
        self._lock = threading.Lock()
        self.files: set[str] = set()

    def why_not(self) -> str | None:
        if self._key_path is None:
            return "no custodian key: start bwc sim with --key CUSTODIAN.key"
        if not self._live.ended:
            return "the run has not ended (End run first)"
        return None

    def run(self) -> dict:
        from device.evidence.keys import read_custodian_secret
        from device.evidence.storage_verify import verify_storage
        from nacl.signing import VerifyKey
        from tools.export import ExportError, export_events
        from tools.report import format_report, verify_exit_code

        why = self.why_not()
        if why is not None:
            raise LiveError(409, why)
        with self._lock:
            live = self._live
            device_key = VerifyKey(live.identity.device_public_key)
            try:
                secret = read_custodian_secret(self._key_path)
            except (OSError, ValueError) as exc:
                raise LiveError(409, f"{self._key_path}: cannot read the custodian key ({exc})") from None
            report = verify_storage(live.storage_dir, device_key)
            verify = {"outcome": report.outcome, "exit_code": verify_exit_code(report),
                      "report": format_report(report)}
            os.makedirs(self.out_dir, exist_ok=True)
            try:
                result = export_events(live.storage_dir, secret, device_key, self.out_dir, True)
            except ExportError as exc:
                return {"verify": verify, "exported": [], "not_exported": [], "error": str(exc)}
            exported = []
            for ev in result.exported:
                for path in (ev.mp4_path, ev.sidecar_path):
                    self.files.add(os.path.basename(path))
                exported.append({"event_id": ev.event_id, "mp4": f"/exports/{os.path.basename(ev.mp4_path)}",
                                 "sidecar": f"/exports/{os.path.basename(ev.sidecar_path)}",
                                 "media_s": round(ev.media_s, 3)})
            not_exported = [{"event_id": ev.event_id, "code": ev.refusal.code, "reason": ev.refusal.reason}
                            for ev in result.not_exported]
            return {"verify": verify, "exported": exported, "not_exported": not_exported}


def build_app(live: LiveSim, key_path: str | None = None, out_dir: str | None = None,
              check_host: bool = True, closing: threading.Event | None = None) -> Starlette:
    """`check_host`: refuse requests whose Host is not a loopback name (off only for a
    test client, whose Host is "testserver"). `closing`: set when the server shuts down;
    the event streams then end."""
    closing = closing if closing is not None else threading.Event()
    static_dir = str(resources.files("tools.sim_web").joinpath("static"))
    frames = _Frames(live)
    exporter = _Exporter(live, key_path, out_dir or os.path.join(live.device_dir, "sim-export"))

    def status() -> dict:
        out = live.status()
        why = exporter.why_not()
        out["export"] = {"available": why is None, "why": why}
        return out

    async def body_of(request: Request) -> object:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise LiveError(415, "send the control as JSON (Content-Type: application/json)")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            raise LiveError(413, f"a control is at most {MAX_BODY_BYTES} bytes")
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY_BYTES:
                raise LiveError(413, f"a control is at most {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise LiveError(400, f"the body is not JSON: {str(exc)[:80]}") from None

    async def control(request: Request, action) -> Response:
        try:
            body = await body_of(request)
            return JSONResponse(await run_in_threadpool(action, body))
        except LiveError as exc:
            return _error(exc.status, str(exc))

    async def page(request: Request) -> Response:
        return FileResponse(os.path.join(static_dir, "index.html"), headers={"Cache-Control": "no-store"})

    async def get_status(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(status))

    async def post_input(request: Request) -> Response:
        return await control(request, live.input)

    async def post_step(request: Request) -> Response:
        return await control(request, live.step)

    async def post_end(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(live.end))
        except LiveError as exc:
            return _error(exc.status, str(exc))

    async def post_export(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(exporter.run))
        except LiveError as exc:
            return _error(exc.status, str(exc))

    async def frame(request: Request) -> Response:
        found = await run_in_threadpool(frames.jpeg)
        if found is None:
            return Response(status_code=204)
        jpeg, at_us = found
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Frame-Monotonic-Us": str(at_us)})

    async def speaker(request: Request) -> Response:
        clip = live.speaker_clip(request.path_params["n"])
        if clip is None:
            return _error(404, f"no sound {request.path_params['n']} played yet")
        return Response(wav_bytes(*clip), media_type="audio/wav")

    async def scenario(request: Request) -> Response:
        return PlainTextResponse(live.scenario_text(), media_type="application/toml",
                                 headers={"Content-Disposition": 'attachment; filename="sim-run.toml"'})

    async def export_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in exporter.files:
            return _error(404, f"no exported file {name!r}")
        return FileResponse(os.path.join(exporter.out_dir, name))

    async def events(request: Request) -> Response:
        async def stream():
            cursor, since_status_s = (0, 0, 0), STATUS_INTERVAL_S
            while not closing.is_set() and not await request.is_disconnected():
                await run_in_threadpool(live.poll)
                messages, cursor = live.feed(cursor)
                for kind, message in messages:
                    yield _sse(kind, message)
                if messages or since_status_s >= STATUS_INTERVAL_S:
                    yield _sse("status", await run_in_threadpool(status))
                    since_status_s = 0.0
                await asyncio.sleep(FEED_INTERVAL_S)
                since_status_s += FEED_INTERVAL_S
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def not_found(request: Request, exc) -> Response:
        return _error(404, f"no such page {request.url.path}")

    async def not_allowed(request: Request, exc) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    app = Starlette(exception_handlers={404: not_found, 405: not_allowed}, routes=[
        Route("/", page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=static_dir), name="static"),
        Route("/api/status", get_status, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/api/frame.jpg", frame, methods=["GET"]),
        Route("/api/speaker/{n:int}.wav", speaker, methods=["GET"]),
        Route("/api/input", post_input, methods=["POST"]),
        Route("/api/step", post_step, methods=["POST"]),
        Route("/api/end", post_end, methods=["POST"]),
        Route("/api/export", post_export, methods=["POST"]),
        Route("/api/scenario", scenario, methods=["GET"]),
        Route("/exports/{name}", export_file, methods=["GET"]),
    ])
    return _LoopbackOnly(app) if check_host else app


class _LoopbackOnly:
    """ASGI middleware: refuse a request whose Host header is not a loopback name."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            # "name", "name:port", "[v6]" or "[v6]:port"
            name = host[:host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":")[0]
            if not is_loopback(name):
                await _error(421, f"this simulator answers only on a loopback address, not {host!r}")(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def _sse(kind: str, message: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")
