"""`bwc run` on a failing or full card (issue 5 reproductions 2 and 5), through the real
command line: one plain line per event, never a traceback, and the card verifies after."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.tool

CAMERA = """
[camera]
width = 160
height = 96
fps = 5
keyframe_interval_s = 1
bitrate_bps = 400000
constant_bitrate = true

[policy]
pre_event_s = 1
segment_s = 2
hold_stop_s = 1
"""


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_card_that_fills_closes_the_event_and_a_reboot_with_more_room_records_again(bwc, fresh_device, tmp_path):
    """Fill the card mid-event, double-press again on the full card, then reboot with more
    space: the next event records, and the whole card verifies without tampering."""
    scenario = _write(tmp_path, "full.toml", f"""duration_s = 14
{CAMERA}
[[at]]
t_s = 0.5
do = "storage.fill"
free_bytes = 600000

[[at]]
t_s = 1
do = "button.double_press"

[[at]]
t_s = 6
do = "button.double_press"

[[at]]
t_s = 7
do = "power.cut"

[[at]]
t_s = 7.5
do = "storage.heal"

[[at]]
t_s = 8
do = "power.restore"

[[at]]
t_s = 9
do = "button.double_press"

[[at]]
t_s = 11
do = "button.hold"
hold_s = 1.2
""")
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", scenario)
    assert r.returncode == 0, str(r)
    assert "the card filled up" in r.stdout
    v = bwc("verify", fresh_device.storage, "--device-pub", fresh_device.pub, "--json")
    assert v.returncode in (0, 3), str(v)
    import json
    report = json.loads(v.stdout)
    assert report["problems"] == [] and len(report["events"]) == 2
    assert [f["kind"] for f in report["faults"]] == ["storage_full"]


@pytest.mark.parametrize("errno", ["ENOSPC", "EIO"])
def test_a_storage_fault_is_one_line_and_the_retry_records(bwc, fresh_device, tmp_path, errno):
    scenario = _write(tmp_path, "fault.toml", f"""duration_s = 9
{CAMERA}
[[at]]
t_s = 1
do = "button.double_press"

[[at]]
t_s = 3
do = "storage.fail"
errno = "{errno}"
op = "write"
count = 1

[[at]]
t_s = 5
do = "button.double_press"

[[at]]
t_s = 7
do = "button.hold"
hold_s = 1.2
""")
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", scenario)
    assert r.returncode == 1, str(r)
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith("bwc run: ") for line in lines), r.stderr
    assert any("recording failed" in line for line in lines)
    v = bwc("verify", fresh_device.storage, "--device-pub", fresh_device.pub)
    assert v.returncode == 3, str(v)
    assert "lost to a storage fault" in v.stdout or "fault" in v.stdout
