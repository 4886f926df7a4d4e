"""What picamera2's own enumeration reports about the stub camera (what `bwc doctor --hal pi` reads)."""
from __future__ import annotations

import picamera2_env

IMX219_MODES = [["SRGGB10_CSI2P", [640, 480], 103.33], ["SRGGB10_CSI2P", [1640, 1232], 41.85],
                ["SRGGB10_CSI2P", [3280, 2464], 21.19]]


def test_camera_count_model_and_sensor_modes_come_from_the_settings():
    picamera2_env.configure(cameras=2, model="imx219", modes=IMX219_MODES)
    try:
        from picamera2 import Picamera2
        info = Picamera2.global_camera_info()
        assert [(camera["Model"], camera["Num"]) for camera in info] == [("imx219", 1), ("imx219", 0)]
        picam2 = Picamera2(0)
        try:
            modes = picam2.sensor_modes  # picamera2 configures the camera once per mode to read these
            assert [(m["size"], m["fps"], m["bit_depth"]) for m in modes] == [
                ((640, 480), 103.33, 10), ((1640, 1232), 41.85, 10), ((3280, 2464), 21.19, 10)]
            assert picam2.sensor_resolution == (3280, 2464)
        finally:
            picam2.close()
    finally:
        picamera2_env.configure(cameras=1)


def test_no_camera_enumerates_none():
    picamera2_env.configure(cameras=0)
    try:
        from picamera2 import Picamera2
        assert Picamera2.global_camera_info() == []
    finally:
        picamera2_env.configure(cameras=1)
