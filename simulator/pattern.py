"""Burn-in test pattern for the simulated camera (SIM-1).

Every frame carries its frame number and capture time twice:

* a machine-readable strip of black/white cells across the top of the picture,
  3 rows x 40 columns, cell = width // 40 px (16 px at 640 wide), aligned to the
  left edge and the top so cells sit on the encoder's macroblock grid. The 120
  cells, row-major, MSB first, are

      sync 0xB2 | frame_number (32 bits) | time_ms (40 bits) | CRC-32 of the
      9 payload bytes (32 bits) | sync 0x4D

  Black is Y=16 and white Y=235 (video range). The reader averages the middle of
  each cell and needs both sync bytes and the CRC to match, so a frame without a
  code (or a garbled one) reads as None rather than as a wrong number. The
  geometry depends on the width only, so a reader needs no side information.

* human-readable text under the strip, e.g. ``F 000123  T 00:00:04.100``, drawn
  with a 5x7 bitmap font scaled up (hours shown modulo 100; the strip has the
  full value).

The rest of the picture is a colour gradient with a bar that sweeps across once
every two seconds, so the encoder sees real motion.

frame_number is stored modulo 2**32 and time_ms modulo 2**40 (about 34 years).
"""
from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

CODE_COLUMNS = 40
CODE_ROWS = 3
_SYNC_START = 0xB2
_SYNC_END = 0x4D
Y_BLACK = 16
Y_WHITE = 235
_Y_THRESHOLD = (Y_BLACK + Y_WHITE) // 2
_MIN_CELL_PX = 4
BAR_PERIOD_US = 2_000_000

_FONT_5X7 = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    " ": ("00000",) * 7,
}
_GLYPH_W, _GLYPH_H, _GLYPH_ADVANCE = 5, 7, 6
_TEXT_CHARS = len("F 000000  T 00:00:00.000")


def cell_px(width: int) -> int:
    return width // CODE_COLUMNS


def strip_height_px(width: int) -> int:
    return CODE_ROWS * cell_px(width)


def format_label(frame_number: int, time_ms: int) -> str:
    seconds, ms = divmod(time_ms, 1000)
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"F {frame_number % 1_000_000:06d}  T {hours % 100:02d}:{m:02d}:{s:02d}.{ms:03d}"


# -- the machine-readable strip ------------------------------------------------

def _code_bits(frame_number: int, time_ms: int) -> np.ndarray:
    payload = (frame_number % 2**32).to_bytes(4, "big") + (time_ms % 2**40).to_bytes(5, "big")
    crc = zlib.crc32(payload).to_bytes(4, "big")
    raw = bytes([_SYNC_START]) + payload + crc + bytes([_SYNC_END])
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).reshape(CODE_ROWS, CODE_COLUMNS)


def _check_geometry(width: int, height: int) -> None:
    if cell_px(width) < _MIN_CELL_PX:
        raise ValueError(f"width {width} too small for the code strip (need >= {CODE_COLUMNS * _MIN_CELL_PX})")
    if height < 2 * strip_height_px(width):
        raise ValueError(f"height {height} too small for the code strip at width {width}")


def overlay_code(y_plane: np.ndarray, frame_number: int, time_ms: int) -> None:
    """Write the code strip onto a luma plane (H x W, uint8) in place."""
    height, width = y_plane.shape[:2]
    _check_geometry(width, height)
    cell = cell_px(width)
    levels = np.where(_code_bits(frame_number, time_ms), Y_WHITE, Y_BLACK).astype(np.uint8)
    block = np.repeat(np.repeat(levels, cell, axis=0), cell, axis=1)
    y_plane[: block.shape[0], : block.shape[1]] = block


def read_frame(y_plane: np.ndarray) -> tuple[int, int] | None:
    """(frame_number, time_ms) from a decoded luma plane, or None if it carries no valid code.

    Accepts the luma plane (H x W) or a whole yuv420p array (H*3/2 x W): only the
    top rows and the width matter.
    """
    y_plane = np.asarray(y_plane)
    if y_plane.ndim != 2:
        return None
    width = y_plane.shape[1]
    cell = cell_px(width)
    if cell < _MIN_CELL_PX or y_plane.shape[0] < CODE_ROWS * cell:
        return None
    # Average the middle half of each cell: compression blurs the cell edges.
    margin = cell // 4
    strip = y_plane[: CODE_ROWS * cell, : CODE_COLUMNS * cell].reshape(CODE_ROWS, cell, CODE_COLUMNS, cell)
    means = strip[:, margin : cell - margin, :, margin : cell - margin].mean(axis=(1, 3))
    raw = np.packbits((means > _Y_THRESHOLD).astype(np.uint8).ravel()).tobytes()
    if raw[0] != _SYNC_START or raw[-1] != _SYNC_END:
        return None
    payload, crc = raw[1:10], raw[10:14]
    if zlib.crc32(payload).to_bytes(4, "big") != crc:
        return None
    return int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:], "big")


# -- the human-readable label and the picture ----------------------------------

@lru_cache(maxsize=8)
def _glyphs(scale: int) -> dict[str, np.ndarray]:
    """Each glyph as a boolean mask, scaled up, advance width included."""
    glyphs = {}
    for char, rows in _FONT_5X7.items():
        mask = np.zeros((_GLYPH_H, _GLYPH_ADVANCE), dtype=bool)
        mask[:, :_GLYPH_W] = np.array([[c == "1" for c in row] for row in rows])
        glyphs[char] = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    return glyphs


class _Layout:
    """Everything about a picture size that does not change from frame to frame."""

    def __init__(self, width: int, height: int) -> None:
        _check_geometry(width, height)
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
        self.width, self.height = width, height
        cell = cell_px(width)
        strip_h = strip_height_px(width)
        self.scale = max(1, (width * 9 // 10) // (_TEXT_CHARS * _GLYPH_ADVANCE))
        text_w = _TEXT_CHARS * _GLYPH_ADVANCE * self.scale
        text_h = _GLYPH_H * self.scale
        self.text_x = (width - text_w) // 2
        self.text_y = min(strip_h + cell // 2, height - text_h)
        # The bar sweeps the area below the label.
        self.bar_top = min(height, self.text_y + text_h + cell // 2)
        self.bar_w = max(2, (width // 16) & ~1)

        yuv = np.empty((height * 3 // 2, width), dtype=np.uint8)
        luma = yuv[:height]
        xs = np.linspace(0.0, 1.0, width, dtype=np.float32)
        ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
        luma[:] = (60 + 120 * (0.6 * xs + 0.4 * ys)).astype(np.uint8)
        # Chroma planes (quarter size each) stored row-major after luma, as PyAV expects.
        cw, ch = width // 2, height // 2
        u = yuv[height:].reshape(-1)[: cw * ch].reshape(ch, cw)
        v = yuv[height:].reshape(-1)[cw * ch :].reshape(ch, cw)
        u[:] = (128 + 50 * (xs[::2] - 0.5)).astype(np.uint8)
        v[:] = (128 + 50 * (0.5 - ys[::2])).astype(np.uint8)
        # Neutral chroma behind the strip and the label so they read as black/white.
        u[: self.bar_top // 2] = 128
        v[: self.bar_top // 2] = 128
        luma[strip_h : self.bar_top] = Y_BLACK + 16
        self.background = yuv
        self.background.setflags(write=False)


@lru_cache(maxsize=8)
def _layout(width: int, height: int) -> _Layout:
    return _Layout(width, height)


def _draw_text(luma: np.ndarray, layout: _Layout, text: str) -> None:
    glyphs = _glyphs(layout.scale)
    x, y = layout.text_x, layout.text_y
    for char in text[:_TEXT_CHARS]:
        mask = glyphs[char]
        h, w = mask.shape
        region = luma[y : y + h, x : x + w]
        region[mask[: region.shape[0], : region.shape[1]]] = Y_WHITE
        x += w


def read_label(y_plane: np.ndarray) -> str:
    """OCR the human-readable label back (nearest glyph per character): lets tests check the text."""
    height, width = y_plane.shape[0], y_plane.shape[1]
    layout = _layout(width, height if height % 2 == 0 else height - 1)
    glyphs = _glyphs(layout.scale)
    h, w = _GLYPH_H * layout.scale, _GLYPH_ADVANCE * layout.scale
    chars = []
    for i in range(_TEXT_CHARS):
        x = layout.text_x + i * w
        ink = y_plane[layout.text_y : layout.text_y + h, x : x + w] > _Y_THRESHOLD
        chars.append(min(glyphs, key=lambda c: np.count_nonzero(glyphs[c] != ink)))
    return "".join(chars)


def render_frame(frame_number: int, time_us: int, width: int, height: int) -> np.ndarray:
    """A yuv420p picture, shape (height*3/2, width), for av.VideoFrame.from_ndarray."""
    layout = _layout(width, height)
    yuv = layout.background.copy()
    luma = yuv[:height]
    time_ms = time_us // 1000
    # The bar's position follows the capture time, so motion is smooth at any fps.
    span = width + layout.bar_w
    x = (time_us % BAR_PERIOD_US) * span // BAR_PERIOD_US - layout.bar_w
    x0, x1 = max(0, x) & ~1, max(0, min(width, x + layout.bar_w)) & ~1
    if x1 > x0:
        luma[layout.bar_top :, x0:x1] = 200
        cw, ch = width // 2, height // 2
        chroma = yuv[height:].reshape(-1)
        u = chroma[: cw * ch].reshape(ch, cw)
        v = chroma[cw * ch :].reshape(ch, cw)
        u[layout.bar_top // 2 :, x0 // 2 : x1 // 2] = 90
        v[layout.bar_top // 2 :, x0 // 2 : x1 // 2] = 200
    overlay_code(luma, frame_number, time_ms)
    _draw_text(luma, layout, format_label(frame_number, time_ms))
    return yuv
