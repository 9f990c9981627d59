"""How fast the lesson-08 service answers: requests per second and latency, 20 clients at once.

Run from the repository root::

    python -m benchmarks.bench_service                    # 20 clients, 2,000 requests
    python -m benchmarks.bench_service --clients 20 --requests 4000 --weights data/mnist_cnn.pt
    python -m benchmarks.bench_service --scenario freeze  # large uploads must not hold up others

It starts ``python -m helpers.serve`` on a free port (as the notebook does),
warms it up, then ``--clients`` threads each keep one HTTP connection open and
send ``POST /predict`` requests back to back until ``--requests`` have been
answered in all. The images are real: MNIST test digits (28x28 PNG) and pages
of the font-digit test set (64x64 PNG), every one prepared and scored by the
service. It prints requests per second and the 50th and 99th percentiles of
the latency each client saw, and checks every answer was a 200. On Linux it
also prints the CPU time the service and the clients used per request, which
says what the machine could do when other programs load it. The clients
run on the same machine as the service and share its cores, as they would in
a classroom demo from one laptop.

The ``freeze`` scenario asks whether one kind of upload can hold up everyone
else: two clients keep uploading the largest image the service accepts (a
white PNG of about ``MAX_PIXELS`` pixels with one dark digit on it, a few
hundred KB that decode to tens of megabytes) while a third client sends test
digits back to back and a probe asks ``GET /health`` ten times a second. It
prints the probe's and the third client's latencies (p50, p99, max); it
passes when ``/health`` always answered within 100 ms and the third client's
p99 is under 300 ms with every answer a 200 (a 503 "busy" counts as a
failure).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
import uuid

import numpy as np

from helpers.data import load_mnist
from helpers.demo import load_font_digits, to_png
from helpers.serve import start_service


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the file in the field ``file``, and its content type."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def request_bodies(count: int = 64) -> list[tuple[bytes, str]]:
    """Half MNIST test digits, half font-digit pages, as ready-made request bodies."""
    mnist = load_mnist(download=False)
    fonts = load_font_digits()
    rng = np.random.default_rng(0)
    bodies = []
    for i in range(count):
        if i % 2 == 0:
            image = mnist.test_images[rng.integers(len(mnist.test_images))]
        else:
            image = fonts.paper[rng.integers(len(fonts.paper))]
        bodies.append(multipart(to_png(image), f"digit-{i}.png"))
    return bodies


def run_clients(url: str, bodies: list, clients: int, total: int) -> tuple[list[float], list[int], float]:
    """``clients`` threads send ``total`` requests in all; return latencies (s), statuses, wall time."""
    address = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    counter = iter(range(total))
    start_line = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        mine_latency, mine_status = [], []
        start_line.wait()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body, content_type = bodies[(n + number) % len(bodies)]
            began = time.perf_counter()
            connection.request("POST", "/predict?k=3", body=body, headers={"Content-Type": content_type})
            reply = connection.getresponse()
            answer = reply.read()
            mine_latency.append(time.perf_counter() - began)
            mine_status.append(reply.status)
            if reply.status == 200:
                json.loads(answer)
        connection.close()
        with lock:
            latencies.extend(mine_latency)
            statuses.extend(mine_status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - began


def large_upload(pixels: int) -> bytes:
    """A white PNG of about ``pixels`` pixels (square) with one thick dark 7 on it."""
    from PIL import Image, ImageDraw

    side = int(pixels**0.5)
    picture = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(picture)
    width = max(4, side // 40)
    draw.line([(side * 0.3, side * 0.3), (side * 0.7, side * 0.3), (side * 0.45, side * 0.75)], fill=20, width=width)
    buffer = __import__("io").BytesIO()
    picture.save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def percentiles(values: list[float]) -> str:
    """p50, p99 and max of latencies in seconds, in ms."""
    if not values:
        return "no answers"
    ms = np.array(values) * 1000
    return f"p50 {np.percentile(ms, 50):.0f} ms, p99 {np.percentile(ms, 99):.0f} ms, max {ms.max():.0f} ms"


def freeze(url: str, bodies: list, heavy: bytes, seconds: float, heavy_clients: int = 2) -> bool:
    """Two clients upload ``heavy`` over and over while a third sends test digits and a probe asks /health."""
    address = urllib.parse.urlsplit(url)
    stop = threading.Event()
    results: dict[str, list] = {"heavy": [], "heavy_status": [], "light": [], "light_status": [], "health": []}
    lock = threading.Lock()
    heavy_body = multipart(heavy, "large.png")

    def uploader(body: tuple[bytes, str], latency: str, statuses: str, pause: float = 0.0) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
        n = 0
        while not stop.is_set():
            began = time.perf_counter()
            try:
                connection.request("POST", "/predict?k=3", body=body[0], headers={"Content-Type": body[1]})
                reply = connection.getresponse()
                reply.read()
                status = reply.status
                if reply.getheader("connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
            with lock:
                results[latency].append(time.perf_counter() - began)
                results[statuses].append(status)
            n += 1
            if pause:
                stop.wait(pause)
        connection.close()

    def light() -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
        n = 0
        while not stop.is_set():
            body = bodies[n % len(bodies)]
            began = time.perf_counter()
            try:
                connection.request("POST", "/predict?k=3", body=body[0], headers={"Content-Type": body[1]})
                reply = connection.getresponse()
                reply.read()
                status = reply.status
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
            with lock:
                results["light"].append(time.perf_counter() - began)
                results["light_status"].append(status)
            n += 1
            stop.wait(0.02)
        connection.close()

    def probe() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
                connection.request("GET", "/health")
                connection.getresponse().read()
                connection.close()
            except OSError:
                pass
            results["health"].append(time.perf_counter() - began)
            stop.wait(0.1)

    threads = [
        threading.Thread(target=uploader, args=(heavy_body, "heavy", "heavy_status")) for _ in range(heavy_clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the large uploads are under way before the others start measuring
    others = [threading.Thread(target=light), threading.Thread(target=probe)]
    for thread in others:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads + others:
        thread.join()
    heavy_statuses = collections.Counter(results["heavy_status"])
    light_failed = sum(status != 200 for status in results["light_status"])
    health_ms = np.array(results["health"]) * 1000
    print(
        f"freeze: {heavy_clients} clients uploaded a {len(heavy):,}-byte PNG {len(results['heavy'])} times "
        f"(statuses {dict(heavy_statuses)}; {percentiles(results['heavy'])}) during {seconds:.0f} s",
        flush=True,
    )
    print(f"        /health ({len(results['health'])} probes): {percentiles(results['health'])}", flush=True)
    print(
        f"        third client, {len(results['light'])} test digits: {percentiles(results['light'])}; "
        f"{light_failed} failed",
        flush=True,
    )
    light_p99 = np.percentile(np.array(results["light"]) * 1000, 99) if results["light"] else float("inf")
    passed = bool(health_ms.size) and health_ms.max() < 100 and light_p99 < 300 and light_failed == 0
    print(
        f"        {'passed' if passed else 'FAILED'}: /health within 100 ms, third client p99 under 300 ms, "
        f"no failures",
        flush=True,
    )
    return passed


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (Linux); None elsewhere."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--weights", help="weights for mnist_cnn (default: the augmented model)")
    parser.add_argument("--repeats", type=int, default=1, help="measure this many times on one service")
    parser.add_argument(
        "--scenario",
        choices=["load", "freeze"],
        default="load",
        help="load: --clients at once (default); freeze: large uploads beside a small client",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="freeze: how long to measure")
    parser.add_argument("--pixels", type=int, help="freeze: the large image's pixels (default: the limit)")
    args = parser.parse_args(argv)

    bodies = request_bodies()
    if args.scenario == "freeze":
        heavy = large_upload(args.pixels or _max_pixels())
        with start_service(weights=args.weights) as service:
            run_clients(service.url, bodies, 2, 50)  # warm-up
            return 0 if freeze(service.url, bodies, heavy, args.seconds) else 1
    with start_service(weights=args.weights) as service:
        run_clients(service.url, bodies, args.clients, 200)  # warm-up: connections, caches, first calls
        for repeat in range(1, args.repeats + 1):
            server_before, client_before = cpu_seconds(service.process.pid), time.process_time()
            latencies, statuses, seconds = run_clients(service.url, bodies, args.clients, args.requests)
            server_after, client_after = cpu_seconds(service.process.pid), time.process_time()
            failed = sum(status != 200 for status in statuses)
            milliseconds = np.array(latencies) * 1000
            print(
                f"run {repeat}: {len(latencies):,} requests from {args.clients} clients in {seconds:.2f} s: "
                f"{len(latencies) / seconds:,.0f} requests/s; latency p50 {np.percentile(milliseconds, 50):.1f} ms, "
                f"p99 {np.percentile(milliseconds, 99):.1f} ms, mean {statistics.fmean(milliseconds):.1f} ms; "
                f"{failed} failed",
                flush=True,
            )
            if server_before is not None:
                per_request = (server_after - server_before) / len(latencies) * 1000
                client = (client_after - client_before) / len(latencies) * 1000
                print(
                    f"       CPU time per request: service {per_request:.2f} ms, clients {client:.2f} ms "
                    f"(so one free core could serve about {1000 / per_request:,.0f} requests/s)",
                    flush=True,
                )
            if failed:
                return 1
    return 0


def _max_pixels() -> int:
    try:
        from helpers.picture import MAX_PIXELS
    except ImportError:  # before the picture module existed
        from helpers.demo import MAX_PIXELS
    return MAX_PIXELS


if __name__ == "__main__":
    sys.exit(main())
