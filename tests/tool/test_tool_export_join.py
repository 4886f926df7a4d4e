"""`bwc export` joins the segments directly (tools/mp4_join.py): what ffprobe sees in its MP4 is
what it sees in the PyAV remux of the same event, packet for packet, and media the join does
not understand is still exported, by PyAV.

The event: about a second of pre-event video, audio from the activation on (it starts after the
video), segment joins, and a power cut that leaves the last segment cut short.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.tool.conftest import TINY_SCENARIO, _provision
from tests.tool.test_tool_export import exported, sidecars
from tools import cli, mp4_join, remux

# TINY_SCENARIO's event (double press at 1 s, 1 s of pre-event, 2 s segments), longer, cut.
SCENARIO = TINY_SCENARIO.replace("duration_s = 3\n", "duration_s = 7.5\n") + '''
[[at]]
t_s = 7.3
do = "power.cut"
'''
STREAM_FIELDS = ("codec_name", "profile", "width", "height", "pix_fmt", "sample_rate", "channels", "time_base",
                 "start_pts", "start_time", "duration_ts", "duration", "nb_frames", "extradata_size")


@pytest.fixture(scope="module")
def cut_event(bwc, session_dir, custodian):
    device = _provision(session_dir, "cam-join-03", custodian)
    scenario = session_dir / "join.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    r = bwc("run", "--device", device.dir, "--hal", "sim", "--scenario", scenario)
    assert r.returncode == 0, str(r)
    return device


def _export(cut_event, custodian, out, monkeypatch, fast: bool) -> int:
    if not fast:
        real = remux.remux_event
        monkeypatch.setattr(remux, "remux_event", lambda *a: real(*a[:5], False) if len(a) >= 5 else real(*a))
    return cli.main(["export", str(cut_event.storage), "--key", str(custodian.key), "--out", str(out)])


def _probe(mp4, *entries: str) -> dict:
    return json.loads(subprocess.run(["ffprobe", "-v", "error", *entries, "-of", "json", str(mp4)],
                                     check=True, capture_output=True, text=True).stdout)


def _packets(mp4) -> dict[int, list[tuple]]:
    by_stream: dict[int, list[tuple]] = {}
    for p in _probe(mp4, "-show_packets")["packets"]:
        by_stream.setdefault(p["stream_index"], []).append((p["pts"], p["dts"], p.get("duration"), p["size"], p["flags"]))
    return by_stream


def _stream_hashes(mp4) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(mp4), "-map", "0", "-c", "copy", "-f", "streamhash",
                           "-hash", "sha256", "-"], check=True, capture_output=True, text=True).stdout


def test_the_joined_mp4_is_the_pyav_remux_packet_for_packet(cut_event, custodian, tmp_path, monkeypatch):
    fast_code = _export(cut_event, custodian, tmp_path / "fast", monkeypatch, fast=True)
    slow_code = _export(cut_event, custodian, tmp_path / "slow", monkeypatch, fast=False)
    assert fast_code == slow_code == 3   # the cut-short segment: exported, media lost at the end
    (fast,), _ = exported(tmp_path / "fast")
    (slow,), _ = exported(tmp_path / "slow")
    sidecar = sidecars(tmp_path / "fast")[0]
    assert len(sidecar["segments"]) >= 3 and sidecar["verification"]["outcome"] == "truncated"
    assert sidecar == sidecars(tmp_path / "slow")[0]   # the same packet counts, metadata, notices

    fast_info, slow_info = _probe(fast, "-show_streams", "-show_format"), _probe(slow, "-show_streams", "-show_format")
    assert fast_info["format"]["tags"]["encoder"] == "OpenBWC mp4_join"   # the direct join made it
    assert slow_info["format"]["tags"]["encoder"].startswith("Lavf")
    for key in ("creation_time", "title"):
        assert fast_info["format"]["tags"][key] == slow_info["format"]["tags"][key]
    assert fast_info["format"]["duration"] == slow_info["format"]["duration"]
    kinds = [s["codec_type"] for s in fast_info["streams"]]
    assert kinds == ["video", "audio"]
    for mine, theirs in zip(fast_info["streams"], slow_info["streams"]):
        assert {k: mine.get(k) for k in STREAM_FIELDS} == {k: theirs.get(k) for k in STREAM_FIELDS}
    video, audio = fast_info["streams"]
    assert float(video["start_time"]) == 0 and float(audio["start_time"]) > 0.5   # audio after the pre-event
    assert _packets(fast) == _packets(slow)
    assert _stream_hashes(fast) == _stream_hashes(slow)


def test_media_the_join_does_not_understand_is_exported_by_pyav(cut_event, custodian, tmp_path, monkeypatch):
    """Declined after a segment was joined: the whole event again, by the PyAV remux."""
    calls = []
    real_add = mp4_join.Joiner.add_segment

    def add_segment(self, source):
        calls.append(source)
        if len(calls) == 2:
            raise mp4_join.Declined("a box this test says is unknown")
        return real_add(self, source)

    monkeypatch.setattr(mp4_join.Joiner, "add_segment", add_segment)
    assert _export(cut_event, custodian, tmp_path / "out", monkeypatch, fast=True) == 3
    (mp4,), _ = exported(tmp_path / "out")
    assert _probe(mp4, "-show_format")["format"]["tags"]["encoder"].startswith("Lavf")
    assert len(calls) == 2
    assert sidecars(tmp_path / "out")[0]["packets"]["video"] > 0
