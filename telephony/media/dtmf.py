"""In-band DTMF: digits heard in the audio itself (Goertzel at the eight DTMF frequencies).

For remotes that do not send RFC 4733 events (``open`` with ``"inband": true``). The audio is
cut into blocks of 205 samples (about 26 ms, the classic size at 8 kHz); each block's power at
the exact row and column frequencies is one matrix product. A digit is a block where one row
and one column tone carry most of the block's energy, with less than 8 dB twist; it is reported
once, when seen in two blocks in a row, and again only after a block without it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["InbandDetector"]

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
BLOCK = 205
_RATE = 8000
_t = np.arange(BLOCK) / _RATE
_FREQS = np.array(ROWS + COLS)
_BASIS = np.exp(-2j * np.pi * np.outer(_t, _FREQS))  # BLOCK x 8
_MIN_RMS = 60.0  # about -55 dBFS: quieter blocks are not looked at
_SHARE = 0.6  # of the block's energy in the two tones
_TWIST = 10 ** (8 / 10)


class InbandDetector:
    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float64)
        self._candidate: str | None = None
        self._reported: str | None = None

    def _classify(self, block: np.ndarray) -> str | None:
        energy = float(np.dot(block, block))
        if energy < _MIN_RMS**2 * BLOCK:
            return None
        power = np.abs(block @ _BASIS) ** 2 / (energy * BLOCK / 2)
        row, col = int(np.argmax(power[:4])), int(np.argmax(power[4:]))
        pr, pc = power[row], power[4 + col]
        if pr + pc < _SHARE or pr > pc * _TWIST or pc > pr * _TWIST:
            return None
        return KEYS[row][col]

    def feed(self, pcm: np.ndarray) -> list[str]:
        """Samples in; the digits that became certain with them out."""
        data = np.concatenate([self._pending, pcm.astype(np.float64)])
        digits: list[str] = []
        count = len(data) // BLOCK
        for i in range(count):
            key = self._classify(data[i * BLOCK : (i + 1) * BLOCK])
            if key is None:
                self._candidate = self._reported = None
                continue
            if key == self._candidate and key != self._reported:
                digits.append(key)
                self._reported = key
            self._candidate = key
        self._pending = data[count * BLOCK :]
        return digits
