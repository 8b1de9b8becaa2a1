"""Frames and sound that say which phase they were made in.

Every picture carries its phase as its colour (green public, red private) and a 16-bit
sequence number as a row of black and white cells; the sound is a 440 Hz tone in the
public part and 1,000 Hz in the private part. Both survive VP8, H.264 and AAC, so
whatever reached a public output can be read back and judged."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from aiortc import VideoStreamTrack
from av import AudioFrame, VideoFrame

from tests.media.peers import Tone

WIDTH, HEIGHT, CELL, BITS = 320, 240, 20, 16
PUBLIC, PRIVATE = "public", "private"
COLOURS = {PUBLIC: (30, 170, 60), PRIVATE: (200, 30, 30)}
TONES = {PUBLIC: 440.0, PRIVATE: 1000.0}


@dataclass
class PhaseFlag:
    """What the publisher believes the phase is (it learns of the cut from its events)."""

    phase: str = PUBLIC
    made: list[tuple[int, str]] = field(default_factory=list)  # (sequence, phase) per frame


def stamped_picture(sequence: int, phase: str) -> np.ndarray:
    picture = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    picture[:] = COLOURS[phase]
    for bit in range(BITS):
        shade = 255 if (sequence >> bit) & 1 else 0
        picture[0:CELL, bit * CELL : (bit + 1) * CELL] = shade
    return picture


def read_stamp(picture: np.ndarray) -> tuple[int, str]:
    """(sequence, phase) of a decoded picture (scaled pictures are read proportionally)."""
    height, width = picture.shape[:2]
    scale_x, scale_y = width / WIDTH, height / HEIGHT
    row = int(CELL / 2 * scale_y)
    sequence = 0
    for bit in range(BITS):
        column = int((bit * CELL + CELL / 2) * scale_x)
        if picture[row, column].mean() > 128:
            sequence |= 1 << bit
    body = picture[int(height * 0.4) : int(height * 0.9), :].reshape(-1, 3).mean(axis=0)
    return sequence, PRIVATE if body[0] > body[1] else PUBLIC


class StampedPicture(VideoStreamTrack):
    def __init__(self, flag: PhaseFlag) -> None:
        super().__init__()
        self.flag = flag
        self.sequence = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.sequence = (self.sequence + 1) % (1 << BITS)
        phase = self.flag.phase
        self.flag.made.append((self.sequence, phase))
        frame = VideoFrame.from_ndarray(stamped_picture(self.sequence, phase), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class PhaseTone(Tone):
    """The tone of the phase the publisher believes it is in."""

    def __init__(self, flag: PhaseFlag) -> None:
        super().__init__()
        self.flag = flag

    def frequency(self) -> float:
        return TONES[self.flag.phase]


def tones_in(samples: np.ndarray, rate: int) -> dict[str, int]:
    """How many 20 ms windows of mono `samples` are dominated by each phase's tone."""
    window = rate // 50
    counts = {PUBLIC: 0, PRIVATE: 0}
    frequencies = np.fft.rfftfreq(window, 1 / rate)
    for start in range(0, len(samples) - window, window):
        chunk = samples[start : start + window].astype(np.float64)
        if np.abs(chunk).max() < 500:
            continue  # silence
        peak = frequencies[np.abs(np.fft.rfft(chunk * np.hanning(window))).argmax()]
        for phase, hertz in TONES.items():
            if abs(peak - hertz) < 60:
                counts[phase] += 1
    return counts


def mono_samples(frame: AudioFrame) -> np.ndarray:
    """The first channel of a decoded audio frame, planar or interleaved."""
    samples = frame.to_ndarray()
    first = samples[0] if frame.format.is_planar else samples[0][:: len(frame.layout.channels)]
    # Decoders of AAC and Opus give floats in [-1, 1]; the tone is judged on 16-bit scale.
    scale = 32768.0 if first.dtype.kind == "f" else 1.0
    return first.astype(np.float32) * scale
