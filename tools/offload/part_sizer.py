"""How big each upload part is (docs/offload.md §8): what a drop costs is at most the part
in flight, and what each part costs the intake is one request. So the part follows the
link: about a quarter of a second of it, measured on the parts already sent, between
64 KiB and 4 MiB, halved after a drop. A resumed upload keeps the part size it began with
(the intake keys an upload by it), so the size changes only between segments."""
from __future__ import annotations

from device.offload.protocol import PART_BYTES_DEFAULT

PART_TARGET_S = 0.25
SIZER_MIN_BYTES = 64 * 1024
SIZER_MAX_BYTES = 4 * 1024 * 1024
_SMOOTHING = 0.3      # weight of the newest measurement in the running rate


class PartSizer:
    def __init__(self, first_bytes: int = PART_BYTES_DEFAULT) -> None:
        self.rate_bps: float | None = None
        self._cap = SIZER_MAX_BYTES
        self._first = first_bytes

    def sent(self, n_bytes: int, elapsed_s: float) -> None:
        if elapsed_s <= 0 or n_bytes < SIZER_MIN_BYTES // 4:
            return      # too small to say anything about the link
        rate = n_bytes / elapsed_s
        self.rate_bps = rate if self.rate_bps is None else (1 - _SMOOTHING) * self.rate_bps + _SMOOTHING * rate
        self._cap = min(SIZER_MAX_BYTES, self._cap * 2)     # a part got through: let it grow back

    def dropped(self) -> None:
        self._cap = max(SIZER_MIN_BYTES, self.next_part_bytes() // 2)

    def next_part_bytes(self) -> int:
        wanted = self._first if self.rate_bps is None else self.rate_bps * PART_TARGET_S
        size = SIZER_MIN_BYTES
        while size * 2 <= min(wanted, self._cap):
            size *= 2
        return size
