"""The trained model as a web service: ``python -m helpers.serve [--port N]``.

Introduced in lesson 08. Built on FastAPI (the web framework) and uvicorn (the
server); it listens on 127.0.0.1 only (this computer), unless told otherwise.

* ``POST /predict[?k=3]``: an image as the multipart form field ``file``;
  answers ``{"predictions": [{"digit": d, "probability": p}, ...],
  "readable": true/false, "reason": null or "<why the picture was not read>",
  "prepared": <the 28x28 input the model saw, PNG as base64>,
  "milliseconds": <time spent on it>}``, best first. ``readable`` is false
  (predictions still included) when no mark in the picture looks like one
  digit, or the model is unsure (``helpers.picture.read_digit`` and ``judge``).
  Bad input gets ``{"error": "<what was wrong and what is expected>"}`` with
  status 400 (unreadable, a blank picture, a bad ``k``), 413 (over
  ``MAX_BYTES`` bytes or ``MAX_PIXELS`` pixels; a decompression bomb is refused
  from its header), 415 (not an image it reads) or 503 with ``Retry-After``
  (too much work in flight). Every answer, errors included, is JSON.
* ``GET /``: a page to click test digits, draw one or upload a picture, with
  the top-3 as bars (``helpers/static/``).
* ``GET /examples``: the page's gallery, test digits as PNG (base64) with labels.
* ``GET /health``: ``{"status": "ok"}``.

The model (the augmented one, ``data/mnist_cnn_robust.pt``, trained on first
use when missing) is loaded once, on the GPU when there is one.

The event loop never computes: reading, preparing and scoring a picture run in
worker threads, small pictures in one pool and large ones (over
``LARGE_PIXELS``) in another of one thread, so a few large uploads cannot hold
up everyone else; each pool has a limit on work in flight, beyond which the
answer is 503 with ``Retry-After``. Every response carries
``Content-Security-Policy``, ``X-Content-Type-Options`` and ``X-Frame-Options``;
``HEAD`` works wherever ``GET`` does; a connection that sends nothing for
``--timeout`` seconds (30) while a request is due is closed.

``--host`` says which address to listen on: 127.0.0.1 (the default) is this
computer only; ``::1`` its IPv6 loopback; ``0.0.0.0`` or ``::`` every network
interface, so anyone who can reach this computer can use it (a warning is
printed).
``start_service()`` runs the same command in the background (the notebook and
the tests use it) and ``stop()`` ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import concurrent.futures
import errno
import io
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from torch import nn

from helpers.core import pick_device, to_input
from helpers.demo import to_png
from helpers.picture import MAX_BYTES, MAX_PIXELS, DigitImageError, judge, read_digit, read_image

LESSON = 8

__all__ = ["BackgroundService", "create_app", "example_digits", "main", "get_json", "post_image", "start_service"]

STATIC = Path(__file__).resolve().parent / "static"
ROOT = Path(__file__).resolve().parent.parent
#: Room for the multipart wrapping around the file itself.
FORM_OVERHEAD = 64_000
#: Pictures over this many pixels (by their header) are large: they go to their own one-thread pool.
LARGE_PIXELS = 4_000_000
#: Work in flight (running or waiting) beyond which the answer is 503: small pictures, large ones.
SMALL_IN_FLIGHT = 64
LARGE_IN_FLIGHT = 2
#: Seconds a connection may send nothing while its request is due before it is closed.
IDLE_TIMEOUT = 30.0
#: Where the page may be shown in a frame: itself, a notebook on this computer, Colab's output frames.
FRAME_ANCESTORS = (
    "'self' http://localhost:* http://127.0.0.1:* http://[::1]:* https://*.googleusercontent.com "
    "https://colab.research.google.com"
)


def example_digits(model: nn.Module, images: np.ndarray, labels: np.ndarray, per_digit: int = 2, wrong: int = 4):
    """The gallery: the first ``per_digit`` test images of each digit the model gets right, then
    the first ``wrong`` it gets wrong.

    Returns
    -------
    list of int
        Positions in ``images``.
    """
    device = next(model.parameters()).device
    with torch.inference_mode():
        predicted = torch.cat(
            [model(to_input(images[i : i + 2000], device)).argmax(1).cpu() for i in range(0, len(images), 2000)]
        ).numpy()
    right = predicted == labels
    chosen = [int(i) for digit in range(10) for i in np.flatnonzero(right & (labels == digit))[:per_digit]]
    return chosen + [int(i) for i in np.flatnonzero(~right)[:wrong]]


class _TooLarge(Exception):
    """A request body over the limit."""


class _LimitBody:
    """ASGI middleware: refuse a request body over ``limit`` bytes with a 413, without keeping it.

    A body whose declared length is over the limit is refused before the
    application sees it; one sent without its length is counted as it
    arrives. Either way the rest of the body is read and thrown away (up to
    ``DRAIN_LIMIT``), so that a client which sends the whole body before
    reading the answer gets the 413 instead of a broken connection.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _drain(receive)
                message = f"the upload has {int(value):,} bytes; the limit is {limit - FORM_OVERHEAD:,} bytes."
                await _send_json(send, 413, {"error": message})
                return None
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            event = await receive()
            seen += len(event.get("body", b""))
            if seen > limit:
                if event.get("more_body", False):
                    await _drain(receive)
                raise _TooLarge(f"the upload is over the limit of {limit - FORM_OVERHEAD:,} bytes.")
            return event

        return await self.app(scope, counted, send)


#: At most this many bytes of a refused body are read (and thrown away) before answering.
DRAIN_LIMIT = 200_000_000


async def _drain(receive: Any) -> None:
    discarded = 0
    while discarded < DRAIN_LIMIT:
        event = await receive()
        discarded += len(event.get("body", b""))
        if event["type"] != "http.request" or not event.get("more_body", False):
            return


async def _send_json(send: Any, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _SecurityHeaders:
    """ASGI middleware: the same protective headers on every response (pages, JSON, errors, static files)."""

    def __init__(self, app: Any, frame_ancestors: str = FRAME_ANCESTORS) -> None:
        self.app = app
        policy = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            f"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            f"frame-ancestors {frame_ancestors}"
        )
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            # Old browsers only: those that know frame-ancestors (above) ignore this for it.
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers if name not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, with_headers)


def _patient_protocol(idle_timeout: float):
    """uvicorn's HTTP protocol (h11), closing a connection that sends nothing for ``idle_timeout`` s
    while a request (or the rest of its body) is due. uvicorn itself only times out idle keep-alive
    connections after a response."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class PatientH11(H11Protocol):
        _idle: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
                self._idle = self.loop.call_later(idle_timeout, self._give_up)

        def _give_up(self) -> None:
            self._idle = None
            if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            super().connection_lost(exc)

    return PatientH11


def _predictor(model: nn.Module, device: torch.device):
    """One image's probabilities, as fast as one image allows: no gradients, no mode switches."""
    model.eval()

    def probabilities(prepared: np.ndarray) -> list[float]:
        x = to_input(torch.from_numpy(prepared), device)
        with torch.inference_mode():
            return torch.softmax(model(x).float(), dim=1)[0].cpu().tolist()

    return probabilities


def _pixels_of(data: bytes, max_bytes: int, max_pixels: int) -> int:
    """The picture's size in pixels, from its header only (the limits and the format checked)."""
    from PIL import Image

    from helpers.picture import ImageTooLargeError, UnreadableImageError, _kind_of

    if len(data) > max_bytes or _kind_of(data) is None:
        return 0  # read_image says what is wrong, in the small pool
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image is far too large by its header; the limit is {max_pixels:,} pixels (checked before decoding). "
            f"Send a smaller image."
        ) from None
    except Exception:
        raise UnreadableImageError("the image's header cannot be read (damaged or cut short?).") from None
    return width * height


def _lower_priority() -> None:
    """Run this thread at a lower CPU priority (Linux: a thread has its own nice value), so that on a
    busy machine a large picture takes longer rather than making everyone else wait."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: the same priority as the rest
        pass


def create_app(
    model: nn.Module | None = None,
    *,
    examples: list[dict] | None = None,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    small_in_flight: int = SMALL_IN_FLIGHT,
    large_in_flight: int = LARGE_IN_FLIGHT,
    workers: int = 4,
    frame_ancestors: str = FRAME_ANCESTORS,
):
    """The web application (FastAPI), around a model that is loaded once.

    Parameters
    ----------
    model : torch.nn.Module, optional
        A trained MNIST model, on the device it should run on; by default the
        augmented model (``helpers.augment.trained_robust_cnn``) on ``pick_device()``.
    examples : list of dict, optional
        The gallery served at ``/examples``: ``{"index", "label", "png"}`` each.
    max_bytes, max_pixels : int
        The limits on an upload.
    small_in_flight, large_in_flight : int
        Pictures being worked on or waiting, small and large (over ``LARGE_PIXELS``),
        beyond which the answer is 503 with ``Retry-After``.
    workers : int
        Threads for small pictures (large ones have one thread of their own).
    frame_ancestors : str
        The pages that may show this one in a frame (CSP ``frame-ancestors``).
    """
    if model is None:
        from helpers.augment import trained_robust_cnn

        model = trained_robust_cnn()
    device = next(model.parameters()).device
    probabilities = _predictor(model, device)
    gallery = {"examples": examples or []}
    small_pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="small")
    large_pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="large", initializer=_lower_priority
    )
    in_flight = {"small": 0, "large": 0}
    limits = {"small": small_in_flight, "large": large_in_flight}

    app = FastAPI(title="Digit model", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.pools = (small_pool, large_pool)

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    app.add_middleware(_LimitBody, limit=max_bytes + FORM_OVERHEAD)
    app.add_middleware(_SecurityHeaders, frame_ancestors=frame_ancestors)

    @app.exception_handler(_TooLarge)
    async def too_large(request: Request, exc: _TooLarge):
        return error(413, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return error(400, f"bad request: {exc.errors()[0].get('msg', 'invalid input')}.")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        return error(500, "the service failed on this request (an internal error); it carries on.")

    @app.api_route("/", methods=["GET", "HEAD"])
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health():
        return {"status": "ok"}

    @app.api_route("/examples", methods=["GET", "HEAD"])
    async def examples_route():
        return gallery

    def answer_for(data: bytes, k: int) -> dict:
        """Read, prepare and score one picture (in a worker thread, never on the event loop)."""
        start = time.perf_counter()
        prepared, readable, reason = read_digit(read_image(data, max_bytes=max_bytes, max_pixels=max_pixels))
        chances = probabilities(prepared)
        order = sorted(range(10), key=lambda digit: -chances[digit])
        readable, reason = judge(readable, reason, [(order[0], chances[order[0]])])
        return {
            "predictions": [{"digit": digit, "probability": chances[digit]} for digit in order[:k]],
            "readable": readable,
            "reason": reason,
            "prepared": base64.b64encode(to_png(prepared)).decode("ascii"),
            "seconds": time.perf_counter() - start,
        }

    def answer_if_small(data: bytes, k: int) -> dict | None:
        """The answer for a small picture; None for a large one (over ``LARGE_PIXELS`` by its header)."""
        pixels = _pixels_of(data, max_bytes, max_pixels)
        if max_pixels >= pixels > LARGE_PIXELS:
            return None
        return answer_for(data, k)

    def busy(lane: str) -> JSONResponse:
        what = "large pictures" if lane == "large" else "pictures"
        return error(
            503,
            f"the service is busy: {limits[lane]} {what} are being read already; try again in a second.",
            headers={"Retry-After": "1"},
        )

    async def run(lane: str, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(small_pool if lane == "small" else large_pool, function, *args)

    async def predict(request: Request):
        start = time.perf_counter()
        k = request.query_params.get("k", "3")
        if not re.fullmatch(r"[0-9]{1,2}", k) or not 1 <= int(k) <= 10:  # ASCII digits only: not '²' or '٣'
            shown = k if len(k) <= 20 else k[:20] + "..."
            return error(400, f"k must be a whole number from 1 to 10 (there are ten digits); got {shown!r}.")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            shown = content_type if len(content_type) <= 60 else content_type[:60] + "..."
            return error(
                400, f"send the image as multipart/form-data with the field 'file'; got content type {shown!r}."
            )
        if in_flight["small"] >= limits["small"]:
            return busy("small")
        in_flight["small"] += 1
        try:
            try:
                form = await request.form(max_files=1, max_fields=10)
            except _TooLarge:
                raise
            except Exception:  # malformed multipart body, or more than one file
                return error(
                    400, "the form cannot be read (a malformed multipart body?); send one image in the field 'file'."
                )
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                await form.close()
                return error(400, "no file: send the image as the multipart form field 'file'.")
            data = await upload.read(max_bytes + 1)
            await form.close()
            try:
                answer = await run("small", answer_if_small, data, int(k))
                if answer is None:  # a large picture: in the large pool, if there is room
                    if in_flight["large"] >= limits["large"]:
                        return busy("large")
                    in_flight["large"] += 1
                    try:
                        answer = await run("large", answer_for, data, int(k))
                    finally:
                        in_flight["large"] -= 1
            except DigitImageError as problem:
                return error(problem.status, str(problem))
        finally:
            in_flight["small"] -= 1
        answer.pop("seconds")
        answer["milliseconds"] = round((time.perf_counter() - start) * 1000, 2)
        return JSONResponse(answer)

    # A plain Starlette route: the request is read by hand, so FastAPI's parameter machinery is skipped
    # (a measurable share of a request that takes about a millisecond in all).
    app.router.add_route("/predict", predict, methods=["POST"])
    return app


def _gallery(model: nn.Module) -> list[dict]:
    from helpers.data import load_mnist

    mnist = load_mnist(download=False)
    # The first 2,000 test digits hold enough of each kind and enough mistakes; scoring them all
    # would add seconds to the start.
    indices = example_digits(model, mnist.test_images[:2000], mnist.test_labels[:2000])
    return [
        {
            "index": index,
            "label": int(mnist.test_labels[index]),
            "png": base64.b64encode(to_png(mnist.test_images[index])).decode("ascii"),
        }
        for index in indices
    ]


def _is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is this computer's loopback (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host`` (IPv4 or IPv6, a name or an address) and ``port``.

    Raises ``OSError`` with a message that names the host and the port and says what to try.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as problem:
        raise OSError(
            f"cannot listen on --host {host}: it is not an address or a name this computer knows "
            f"({problem.strerror}). Use 127.0.0.1 (this computer), ::1 (IPv6), or 0.0.0.0 (every network)."
        ) from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family, backlog=256, dualstack_ipv6=False)
    except OSError as problem:
        if problem.errno == errno.EADDRINUSE:
            hint = f"port {port} is in use; try another --port, or --port 0 for any free one"
        elif problem.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            hint = f"{host} is not one of this computer's addresses; check --host (default 127.0.0.1)"
        elif problem.errno == errno.EACCES:
            hint = f"port {port} needs special rights here; use a port over 1023"
        else:
            hint = "check --host and --port"
        raise OSError(f"cannot listen on --host {host} --port {port} ({problem.strerror}): {hint}.") from None


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    """Start the service and serve until Ctrl+C (or SIGTERM)."""
    parser = argparse.ArgumentParser(
        description="Serve the digit model: a web page and POST /predict.",
        epilog="By default only this computer can reach the service (--host 127.0.0.1). --host 0.0.0.0 (or ::) "
        "listens on every network interface: anyone who can reach this computer can then use it.",
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port); default 8000")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on: 127.0.0.1 (default: this computer only), ::1 (IPv6 loopback), "
        "0.0.0.0 or :: (every network interface: a warning is printed)",
    )
    parser.add_argument("--weights", type=Path, help="a weights file for mnist_cnn (default: the augmented model)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads per image (default 1)")
    parser.add_argument("--workers", type=int, default=4, help="threads reading small pictures (default 4)")
    parser.add_argument(
        "--timeout", type=float, default=IDLE_TIMEOUT, help="close a connection that sends nothing for this many s (30)"
    )
    parser.add_argument("--frame-ancestors", default=FRAME_ANCESTORS, help="pages that may show this one in a frame")
    parser.add_argument("--parent-pid", type=int, help="stop when this process ends (start_service sets it)")
    args = parser.parse_args(argv)

    # The address first: a bad --host or a busy --port is said at once, before the model loads.
    try:
        sock = listen(args.host, args.port)
    except OSError as problem:
        print(problem, flush=True)
        return 1
    if not _is_loopback(args.host):
        print(
            f"Warning: listening on {args.host}, beyond this computer: anyone who can reach it on the network "
            f"can use the service. Use --host 127.0.0.1 to keep it to this computer.",
            flush=True,
        )

    import uvicorn

    from helpers.augment import ROBUST_WEIGHTS_PATH, trained_robust_cnn
    from helpers.models import mnist_cnn
    from helpers.training import load_weights

    torch.set_num_threads(max(1, args.threads))  # one small image: more threads only add overhead
    device = pick_device()
    if args.weights is not None:
        model = load_weights(mnist_cnn(), args.weights).to(device).eval()
    else:
        if not ROBUST_WEIGHTS_PATH.is_file():
            print("No data/mnist_cnn_robust.pt yet: training the augmented model first (a minute or two on a CPU).")
        model = trained_robust_cnn(device=device)
    app = create_app(model, examples=_gallery(model), workers=args.workers, frame_ancestors=args.frame_ancestors)

    host, port = sock.getsockname()[:2]
    print(f"Serving the digit model ({device.type}) on {_url(host, port)}  (Ctrl+C to stop)", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        http=_patient_protocol(args.timeout),
    )
    server = uvicorn.Server(config)
    if args.parent_pid:
        _stop_with_parent(server, args.parent_pid)
    server.run(sockets=[sock])
    return 0


def _stop_with_parent(server: Any, parent: int) -> None:
    """Stop ``server`` once the process that started it has ended (a notebook kernel that was shut down)."""

    def watch() -> None:
        while not server.should_exit:
            time.sleep(1.0)
            if os.getppid() != parent:  # our parent is gone: we were handed to another process
                server.should_exit = True

    threading.Thread(target=watch, daemon=True, name="parent watch").start()


#: An HTTP client that never goes through a proxy (the service is on this computer).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_image(
    url: str, data: bytes, filename: str = "digit.png", *, k: int | str = 3, timeout: float = 30.0
) -> tuple[int, dict]:
    """Send an image file to a running service's ``POST /predict`` as the form field ``file``.

    Parameters
    ----------
    url : str
        The service, e.g. ``http://127.0.0.1:8000``.
    data : bytes
        The image file's bytes.
    filename : str
        The name sent with it.
    k : int
        How many answers to ask for.

    Returns
    -------
    (int, dict)
        The HTTP status and the JSON answer (``{"predictions": ..., "readable": ..., "reason": ...}``
        or ``{"error": ...}``).
    """
    boundary = uuid.uuid4().hex
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            bytes(data),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    request = urllib.request.Request(
        f"{url}/predict?k={urllib.parse.quote(str(k))}",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with _DIRECT.open(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as reply:
        return reply.code, json.loads(reply.read() or b"{}")


def get_json(url: str, timeout: float = 30.0) -> dict:
    """``GET`` a JSON answer from a running service (e.g. ``/health``, ``/examples``)."""
    with _DIRECT.open(url, timeout=timeout) as reply:
        return json.loads(reply.read())


class BackgroundService:
    """A service started by ``start_service``: its ``url``; ``stop()`` ends it (also on leaving a ``with``)."""

    def __init__(self, process: subprocess.Popen, url: str, lines: collections.deque) -> None:
        self.process, self.url, self._lines = process, url, lines

    def __enter__(self) -> BackgroundService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process.poll() is None else f"stopped (exit code {self.process.returncode})"
        return f"BackgroundService({self.url}, {state})"

    @property
    def running(self) -> bool:
        """Whether the service's process is still alive."""
        return self.process.poll() is None

    @property
    def output(self) -> str:
        """The last lines the service printed."""
        return "\n".join(self._lines)

    def stop(self, timeout: float = 15.0) -> int:
        """End the service (SIGTERM, then a kill if it lingers); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def start_service(
    port: int = 0,
    *,
    weights: Path | str | None = None,
    timeout: float = 180.0,
    extra_args: list[str] | None = None,
) -> BackgroundService:
    """Run ``python -m helpers.serve`` in the background and wait until it answers.

    Parameters
    ----------
    port : int
        0 (the default) picks a free port.
    weights : path, optional
        A weights file for ``mnist_cnn`` instead of the augmented model.
    timeout : float
        Seconds to wait for it to start (it may have to train the model first).
    extra_args : list of str, optional
        More command-line options for ``helpers.serve``.

    Returns
    -------
    BackgroundService
        With ``url`` (``http://127.0.0.1:PORT``) and ``stop()``.
    """
    command = [sys.executable, "-m", "helpers.serve", "--port", str(port), "--parent-pid", str(os.getpid())]
    if weights is not None:
        command += ["--weights", str(Path(weights).resolve())]
    command += list(extra_args or [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: collections.deque = collections.deque(maxlen=50)
    address: list[str] = []
    announced = threading.Event()

    def read_output() -> None:  # drains the pipe for the service's whole life, so it never blocks
        for line in process.stdout:
            lines.append(line.rstrip())
            if not address and line.startswith("Serving the digit model"):
                address.append(line.split(" on ", 1)[1].split()[0])
                announced.set()
        announced.set()

    threading.Thread(target=read_output, daemon=True, name="helpers.serve output").start()
    deadline = time.monotonic() + timeout
    announced.wait(timeout)
    if not address:
        process.kill()
        process.wait()
        shown = "\n".join(lines)
        raise RuntimeError(f"the service did not start within {timeout:.0f} s; it printed:\n{shown}")
    service = BackgroundService(process, address[0], lines)
    while time.monotonic() < deadline:
        try:
            with _DIRECT.open(f"{service.url}/health", timeout=5) as reply:
                if reply.status == 200:
                    return service
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"the service at {service.url} did not answer /health; it printed:\n{service.output}")


if __name__ == "__main__":
    sys.exit(main())
