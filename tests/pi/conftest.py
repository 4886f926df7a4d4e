"""tests/pi: the real picamera2 runs on stub hardware bindings (picamera2_env.py)."""
import picamera2_env

picamera2_env.activate()
