"""How fast the lesson-08 service answers: requests per second and latency, 20 clients at once.

Run from the repository root::

    python -m benchmarks.bench_service                    # 20 clients, 2,000 requests
    python -m benchmarks.bench_service --clients 20 --requests 4000 --weights data/mnist_cnn.pt

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
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)

    bodies = request_bodies()
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


if __name__ == "__main__":
    sys.exit(main())
