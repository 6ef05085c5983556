"""Request body limits and upload checks.

Two layers keep a large body from ever being parsed: the declared
``Content-Length`` is checked before anything is read, and the bytes that
actually arrive are counted (a chunked upload, or a client that lies about
its length, is cut off as soon as it passes the limit). A body that stalls
(no bytes for ``body_timeout`` seconds) is answered 408 and its connection
closed, so a slow client cannot hold a request open forever. An upload's type is
decided by its content (Pillow or libsndfile must recognise it), not by the
extension or the ``Content-Type`` the client declared.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import IO, Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmrec.errors import MediaError

#: Formats accepted per upload kind: Pillow / libsndfile format name → file suffix for the decoder.
IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tiff"}
AUDIO_FORMATS = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3"}


@dataclass(frozen=True)
class ServiceLimits:
    """Limits that protect the service from large or hostile requests.

    Attributes
    ----------
    max_upload_bytes : int
        Largest uploaded image or sound (the multipart body may exceed it by ``multipart_overhead``).
    max_json_bytes : int
        Largest JSON body (an interaction batch, a search).
    max_batch : int
        Most interactions in one POST /interactions.
    multipart_overhead : int
        Room for the multipart framing and form fields around the file.
    workers : int
        Engine calls running at once (0: twice the CPU cores); further requests wait on the event loop.
    body_timeout : float
        Seconds a request body may pause between two chunks before the request is answered 408.
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_json_bytes: int = 4 * 1024 * 1024
    max_batch: int = 10_000
    multipart_overhead: int = 64 * 1024
    workers: int = 0
    body_timeout: float = 30.0


class BodyLimitMiddleware:
    """Refuse request bodies over a per-path limit with 413, before and while they are read.

    Parameters
    ----------
    app : ASGI app
    limits : ServiceLimits
    upload_paths : tuple of str
        Paths that take uploads (the larger limit); every other path gets the JSON limit.
    """

    def __init__(self, app: ASGIApp, limits: ServiceLimits, upload_paths: tuple[str, ...] = ("/similar",)) -> None:
        self.app = app
        self.limits = limits
        self.upload_paths = upload_paths

    def limit_for(self, path: str) -> int:
        if path in self.upload_paths:
            return self.limits.max_upload_bytes + self.limits.multipart_overhead
        return self.limits.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_json(send, 400, "invalid Content-Length header")
                return
            if length > limit:
                await _send_json(send, 413, _too_large(limit))
                return
        received = 0
        started = False
        body_done = False
        timeout = self.limits.body_timeout

        async def counting_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # After the body, receive() waits for the client to disconnect (a streamed file listens for it):
                # that wait is as long as the answer, not a stalled upload, so it has no timeout.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except asyncio.TimeoutError:
                raise HTTPException(
                    408, f"request body stalled for {timeout:g} s; send it faster", headers={"Connection": "close"}
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    # FastAPI re-raises HTTPException from body parsing, so this becomes a 413 response.
                    raise HTTPException(413, _too_large(limit))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as e:
            # Raised where no exception handler runs (outside a route): answer here if nothing was sent yet.
            if e.status_code not in (408, 413) or started:
                raise
            await _send_json(send, e.status_code, str(e.detail))


def _too_large(limit: int) -> str:
    return f"request body too large (limit {_size(limit)})"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The client may still be sending the body we refuse to read.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class UploadTypeError(Exception):
    """The upload is not a file of the kind it was sent as (answered with 415)."""


def sniff_upload(kind: str, fileobj: IO[bytes], declared_type: str | None) -> str:
    """Check an uploaded file's real type; return the file suffix its decoder should see.

    Parameters
    ----------
    kind : {"image", "audio"}
        What the client sent it as (the form field's name).
    fileobj : binary file
        The upload; read from the start and rewound afterwards.
    declared_type : str, optional
        The part's ``Content-Type``. A declared type of another kind is refused at once;
        ``application/octet-stream`` or none defers to the content.

    Raises
    ------
    UploadTypeError
        When the declared type or the content is not an accepted format of ``kind``.
    MediaError
        For an image so large that merely opening it is refused (a decompression bomb).
    """
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and not declared.startswith(f"{kind}/"):
        raise UploadTypeError(f"declared type {declared!r} is not an {kind} type")
    fileobj.seek(0)
    try:
        fmt = _image_format(fileobj) if kind == "image" else _audio_format(fileobj)
    finally:
        fileobj.seek(0)
    accepted = IMAGE_FORMATS if kind == "image" else AUDIO_FORMATS
    if fmt not in accepted:
        names = ", ".join(sorted({k for k in accepted if k != "WAVEX"}))
        what = f"uploaded {fmt} file" if fmt else "uploaded file"
        raise UploadTypeError(f"the {what} is not a supported {kind} file (accepted: {names})")
    return accepted[fmt]


def _image_format(fileobj: IO[bytes]) -> str | None:
    from PIL import Image

    try:
        # Image.open reads only the header: cheap, and enough to know the format. Full decoding (and the
        # decompression-bomb check) happens in mmrec.catalog.media.load_image, whose MediaError becomes a 422.
        with Image.open(fileobj) as im:
            return str(im.format)
    except Image.DecompressionBombError as e:
        raise MediaError(f"decompression bomb: {e}") from e
    except Exception:  # Pillow raises many kinds (UnidentifiedImageError, OSError, SyntaxError…) for unknown bytes
        return None


def _audio_format(fileobj: IO[bytes]) -> str | None:
    import soundfile as sf

    try:
        with sf.SoundFile(fileobj) as f:
            return str(f.format)
    except Exception:  # libsndfile raises LibsndfileError, RuntimeError, TypeError…
        return None


def form_value(form: Any, name: str) -> str | None:
    """A text field of a parsed form (``None`` when absent or empty)."""
    value = form.get(name)
    if value is None or not isinstance(value, str) or value == "":
        return None
    return value
