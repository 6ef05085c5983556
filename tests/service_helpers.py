"""What the service tests on the demo catalog share (tests/test_service.py, tests/test_service_items.py): the API
key their clients hold, item ids of the demo, and readers of responses."""

from __future__ import annotations

import io
import wave

KEY = "s3cret-key"
ANIMALS = ["animals/cow", "animals/sheep", "animals/horse"]


def detail(response) -> str:
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


def ids(results) -> list[str]:
    return [r["id"] for r in results]


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()
