"""Lesson 08's service, for real: ``python -m helpers.serve`` on a free localhost port, called over HTTP."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import io
import json
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from helpers import demo
from helpers.core import pick_device
from helpers.data import load_mnist
from helpers.demo import prepare_digit, to_png, top_k
from helpers.models import mnist_cnn
from helpers.serve import get_json, post_image, start_service
from helpers.training import load_weights, save_weights
from tests.nbtools import ROOT
from tests.test_demo import bomb_png, difference, encode, page
from tests.trained import briefly_trained_cnn


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def weights(mnist, tmp_path_factory):
    """A briefly trained CNN saved to a file: the service and the in-process checks both load it."""
    return save_weights(briefly_trained_cnn(), tmp_path_factory.mktemp("service") / "weights.pt")


@pytest.fixture(scope="module")
def model(weights):
    """The same weights in this process, on the device the service picks (so the arithmetic matches)."""
    return load_weights(mnist_cnn(), weights).to(pick_device()).eval()


@pytest.fixture(scope="module")
def service(weights):
    with start_service(weights=weights) as running:
        yield running
    assert running.process.poll() is not None, "the service is stopped after the tests"


def still_answers(service, mnist) -> None:
    assert get_json(f"{service.url}/health") == {"status": "ok"}
    status, answer = post_image(service.url, to_png(mnist.test_images[0]))
    assert status == 200 and len(answer["predictions"]) == 3


def test_health_and_address(service):
    assert service.url.startswith("http://127.0.0.1:")
    assert get_json(f"{service.url}/health") == {"status": "ok"}
    assert "Serving the digit model" in service.output


def test_the_page_and_its_hooks(service):
    address = urllib.parse.urlsplit(service.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", "/")
    reply = connection.getresponse()
    page_html = reply.read().decode()
    assert reply.status == 200 and reply.getheader("content-type").startswith("text/html")
    for hook in ('id="gallery"', 'id="canvas"', 'id="upload"', 'type="file"', 'id="predict-drawing"', 'id="bars"'):
        assert hook in page_html
    served = {}
    for asset, kind in [("/static/app.js", "javascript"), ("/static/style.css", "text/css")]:
        connection.request("GET", asset)
        reply = connection.getresponse()
        served[asset] = reply.read().decode()
        assert reply.status == 200 and kind in reply.getheader("content-type")
    for event in ("pointerdown", "pointermove", "pointerup"):  # mouse, pen and finger alike
        assert event in served["/static/app.js"]
    assert "touch-action: none" in served["/static/style.css"], "a finger draws instead of scrolling the page"
    connection.request("GET", "/no/such/page")
    reply = connection.getresponse()
    assert reply.status == 404 and "error" in json.loads(reply.read())
    connection.request("GET", "/predict")
    reply = connection.getresponse()
    assert reply.status == 405 and "error" in json.loads(reply.read())
    connection.close()


def test_examples_are_real_test_digits_with_their_labels(service, mnist, model):
    examples = get_json(f"{service.url}/examples")["examples"]
    assert len(examples) >= 20
    assert {example["label"] for example in examples} == set(range(10))
    for example in examples:
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(example["png"]))))
        assert np.array_equal(image, mnist.test_images[example["index"]])
        assert example["label"] == mnist.test_labels[example["index"]]
    wrong = [e for e in examples if top_k(model, mnist.test_images[e["index"]], 1)[0][0] != e["label"]]
    assert wrong, "the gallery includes digits the model gets wrong"


def test_predictions_match_top_k_in_process(service, mnist, model):
    for index in range(0, 400, 20):
        data = to_png(mnist.test_images[index])
        status, answer = post_image(service.url, data, f"test-{index}.png")
        assert status == 200, answer
        prepared = prepare_digit(data)
        expected = top_k(model, prepared, k=3)
        assert [p["digit"] for p in answer["predictions"]] == [d for d, _ in expected]
        assert [p["probability"] for p in answer["predictions"]] == pytest.approx([p for _, p in expected], abs=1e-4)
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["prepared"]))))
        assert shown.shape == (28, 28) and np.array_equal(shown, prepared)
        assert answer["milliseconds"] >= 0


@pytest.mark.parametrize("k", [1, 5, 10])
def test_k_answers(service, mnist, k):
    status, answer = post_image(service.url, to_png(mnist.test_images[1]), k=k)
    assert status == 200 and len(answer["predictions"]) == k
    probabilities = [p["probability"] for p in answer["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    if k == 10:
        assert sorted(p["digit"] for p in answer["predictions"]) == list(range(10))
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)


def accepted_files(mnist) -> dict[str, bytes]:
    """One test digit, drawn big on a page, in every accepted format and both polarities."""
    sheet = page(mnist, 21)
    gray = Image.fromarray(sheet)
    rgba = np.zeros((*sheet.shape, 4), np.uint8)
    rgba[..., 3] = 255 - sheet  # black ink, transparent paper
    palette = gray.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    blank = Image.new("L", gray.size, 255)
    photo = gray.resize((1600, 1920), Image.Resampling.BILINEAR).convert("RGB")
    return {
        "png": encode(gray, "PNG"),
        "png light on dark": encode(Image.fromarray(255 - sheet), "PNG"),
        "png transparent": encode(Image.fromarray(rgba), "PNG"),
        "png palette": encode(palette, "PNG", transparency=int(np.asarray(palette)[0, 0])),
        "png 16-bit": encode(Image.fromarray(sheet.astype(np.uint16) * 257), "PNG"),
        "jpeg": encode(gray, "JPEG", quality=85),
        "jpeg big photo": encode(photo, "JPEG", quality=85),
        "gif first frame": encode(gray, "GIF", save_all=True, append_images=[blank]),
        "bmp": encode(gray.convert("RGB"), "BMP"),
    }


def test_every_accepted_format_is_prepared_and_predicted(service, mnist, model):
    files = accepted_files(mnist)
    reference = prepare_digit(page(mnist, 21))
    best = top_k(model, reference, 1)[0][0]
    for name, data in files.items():
        status, answer = post_image(service.url, data, f"digit-{name}")
        assert status == 200, (name, answer)
        prepared = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["prepared"]))))
        assert difference(prepared, reference) < 8, name
        assert answer["predictions"][0]["digit"] == best, name


def chunked_post(service, chunks) -> tuple[int, dict]:
    """POST a body without its length (chunked), as a streaming client would."""
    address = urllib.parse.urlsplit(service.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    boundary = "chunkedboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'.encode()
    body = [head, *chunks, f"\r\n--{boundary}--\r\n".encode()]
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Transfer-Encoding": "chunked"}
    connection.request("POST", "/predict", body=iter(body), headers=headers, encode_chunked=True)
    reply = connection.getresponse()
    answer = json.loads(reply.read())
    connection.close()
    return reply.status, answer


def test_every_rejected_input_gets_its_status_and_message(service, mnist):
    good = to_png(mnist.test_images[0])
    tiff = encode(Image.fromarray(page(mnist)), "TIFF")
    cases = [
        ("empty file", b"", "x.png", 400, "empty"),
        ("text", b"hello, I am not a picture", "x.txt", 415, "not an image"),
        ("tiff", tiff, "x.tiff", 415, "PNG, JPEG, GIF, BMP"),
        ("truncated png", good[: len(good) // 2], "x.png", 400, "cannot be"),
        ("blank page", to_png(np.full((60, 60), 255, np.uint8)), "x.png", 400, "no ink"),
        ("bomb", bomb_png(100_000, 100_000), "x.png", 413, "before decoding"),
        ("too many bytes", b"\x89PNG\r\n\x1a\n" + b"\0" * (demo.MAX_BYTES + 100_000), "x.png", 413, "limit"),
    ]
    for name, data, filename, status, words in cases:
        got, answer = post_image(service.url, data, filename)
        assert got == status, (name, answer)
        assert set(answer) == {"error"} and words in answer["error"], (name, answer)
        still_answers(service, mnist)


def test_bad_requests(service, mnist):
    address = urllib.parse.urlsplit(service.url)
    good = to_png(mnist.test_images[0])
    for k in ("0", "11", "three"):
        status, answer = post_image(service.url, good, k=k)
        assert status == 400 and "k must be" in answer["error"]
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    for body, content_type, words in [
        (good, "image/png", "multipart/form-data"),
        (
            b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            "field 'file'",
        ),
    ]:
        connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
        reply = connection.getresponse()
        answer = json.loads(reply.read())
        assert reply.status == 400 and words in answer["error"], answer
    connection.close()
    still_answers(service, mnist)


def test_a_body_without_its_length_is_limited_too(service, mnist):
    status, answer = chunked_post(service, [b"\0" * 1_000_000] * 11)
    assert status == 413 and "limit" in answer["error"]
    status, answer = chunked_post(service, [to_png(mnist.test_images[0])])
    assert status == 200 and answer["predictions"]
    still_answers(service, mnist)


def test_200_requests_from_20_clients_all_succeed(service, mnist, model):
    images = mnist.test_images[:40]
    expected = [top_k(model, prepare_digit(to_png(image)), 1)[0][0] for image in images]

    def ask(n: int) -> tuple[int, int, int]:
        status, answer = post_image(service.url, to_png(images[n % 40]), f"{n}.png")
        return n, status, answer["predictions"][0]["digit"] if status == 200 else -1

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(ask, range(200)))
    assert all(status == 200 for _, status, _ in results)
    assert all(digit == expected[n % 40] for n, _, digit in results)


def test_stop_ends_the_process(weights):
    running = start_service(weights=weights)
    assert get_json(f"{running.url}/health") == {"status": "ok"}
    running.stop()
    assert running.process.poll() is not None
    with pytest.raises(OSError):
        get_json(f"{running.url}/health", timeout=2)


def test_predict_command_prints_the_top_3(weights, mnist, tmp_path, model):
    path = tmp_path / "digit.png"
    path.write_bytes(to_png(mnist.test_images[0]))
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    command = [sys.executable, "-m", "helpers.predict", str(path), "--weights", str(weights)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = top_k(model, prepare_digit(path.read_bytes()))
    line = next(text for text in result.stdout.splitlines() if text.startswith(f"{path}: "))
    assert line.startswith(f"{path}: {expected[0][0]} (")
    assert line.count(", then ") == 2
    result = subprocess.run([*command, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "not an image" in result.stderr


# --- Issue 21: honest answers, strict inputs, safe defaults, and a loop that never computes.


def three_digits(mnist) -> bytes:
    row = 255 - np.concatenate([mnist.test_images[0], mnist.test_images[1], mnist.test_images[2]], axis=1)
    return to_png(np.pad(row, 10, constant_values=255), scale=4)


def test_every_answer_says_whether_the_picture_was_read(service, mnist):
    status, answer = post_image(service.url, to_png(mnist.test_images[0]))
    assert status == 200 and answer["readable"] is True and answer["reason"] is None
    status, answer = post_image(service.url, three_digits(mnist), "three.png")
    assert status == 200 and answer["readable"] is False, answer
    assert "marks" in answer["reason"] and len(answer["predictions"]) == 3
    status, answer = post_image(service.url, to_png(np.full((60, 60), 255, np.uint8)))
    assert status == 400 and "no ink" in answer["error"]  # a blank picture stays a 400


@pytest.mark.parametrize("k", ["²", "٣", "３", "1e1", " 3", "3 ", "+3", "-1", "03x", "9" * 40])
def test_k_is_read_as_ascii_digits_only(service, mnist, k):
    status, answer = post_image(service.url, to_png(mnist.test_images[0]), k=k)
    assert status == 400 and "k must be" in answer["error"], answer
    assert len(answer["error"]) < 200


def test_errors_never_quote_the_files_bytes_and_webp_is_read(service, mnist):
    from PIL import features

    cases = [
        b"\x00\x01\x02\xff\xfe binary junk" * 10,
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 30,  # a damaged WebP
        b"II*\x00" + b"\x00" * 100,  # TIFF
        b"%PDF-1.7\n" + b"\x00" * 50,
    ]
    for data in cases:
        status, answer = post_image(service.url, data, "x.bin")
        assert status in (400, 415), answer
        assert "\\x" not in answer["error"] and "b'" not in answer["error"], answer
    webp = encode(Image.fromarray(page(mnist, 3)), "WEBP") if features.check("webp") else None
    if webp is not None:
        status, answer = post_image(service.url, webp, "digit.webp")
        assert status == 200 and answer["predictions"], answer
    else:
        status, answer = post_image(service.url, b"RIFF\x10\x00\x00\x00WEBP" + b"\x00" * 40, "x.webp")
        assert status == 415 and "WebP" in answer["error"]


SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")


def request(service, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    address = urllib.parse.urlsplit(service.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    reply = connection.getresponse()
    content = reply.read()
    connection.close()
    return reply, content


def test_security_headers_head_and_json_errors(service):
    for method, path, status in [
        ("GET", "/", 200),
        ("HEAD", "/", 200),
        ("GET", "/health", 200),
        ("HEAD", "/health", 200),
        ("HEAD", "/examples", 200),
        ("GET", "/static/app.js", 200),
        ("HEAD", "/static/style.css", 200),
        ("GET", "/no-such-page", 404),
        ("DELETE", "/health", 405),
        ("GET", "/predict", 405),
    ]:
        reply, content = request(service, method, path)
        assert reply.status == status, (method, path, reply.status)
        for name in SECURITY_HEADERS:
            assert reply.getheader(name), (method, path, name)
        assert reply.getheader("x-content-type-options") == "nosniff"
        if method == "HEAD":
            assert content == b""
        if status >= 400:
            assert reply.getheader("content-type") == "application/json" and "error" in json.loads(content)
        if status == 405:
            assert reply.getheader("allow"), (method, path)
    policy = request(service, "GET", "/")[0].getheader("content-security-policy")
    assert "frame-ancestors" in policy and "script-src 'self'" in policy


def test_large_pictures_never_hold_up_the_others(service, mnist):
    """A picture of 25 megapixels is read in its own thread: /health and small pictures answer meanwhile."""
    import threading
    import time

    side = int(demo.MAX_PIXELS**0.5)
    big = Image.new("L", (side, side), 255)
    big.paste(Image.fromarray(255 - mnist.test_images[0]).resize((side // 2, side // 2)), (side // 4, side // 4))
    data = encode(big, "PNG", compress_level=1)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(post_image(service.url, data, "big.png", timeout=120)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    waits = []
    while any(thread.is_alive() for thread in threads):
        began = time.perf_counter()
        assert get_json(f"{service.url}/health") == {"status": "ok"}
        status, _ = post_image(service.url, to_png(mnist.test_images[1]))
        assert status == 200
        waits.append(time.perf_counter() - began)
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert {status for status, _ in results} <= {200, 503}, results
    assert any(status == 200 and answer["predictions"][0]["digit"] == 7 for status, answer in results), results
    assert waits and max(waits) < 2.0, f"other requests waited up to {max(waits):.2f} s (loaded machine: loose bound)"


def test_too_much_work_in_flight_is_a_503_with_retry_after(model, mnist):
    import asyncio

    from helpers.serve import create_app

    app = create_app(model, small_in_flight=0)
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n\r\n'.encode()
        + to_png(mnist.test_images[0])
        + f"\r\n--{boundary}--\r\n".encode()
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"k=3",
        "root_path": "",
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    assert start["status"] == 503 and headers["retry-after"] == "1"
    assert (
        "busy" in json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))["error"]
    )


def test_host_errors_name_the_host_before_the_model_loads():
    import time

    for host, words in [("203.0.113.7", "not one of this computer's addresses"), ("no-such-host.invalid", "--host")]:
        began = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "helpers.serve", "--host", host, "--port", "0"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        seconds = time.perf_counter() - began
        assert result.returncode == 1, result.stdout + result.stderr
        assert host in result.stdout and words in result.stdout, result.stdout
        assert "Traceback" not in result.stdout + result.stderr
        assert seconds < 15, f"{seconds:.1f} s: the host should be checked before the model loads"


def test_ipv6_loopback(weights):
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    with start_service(weights=weights, extra_args=["--host", "::1"]) as running:
        assert running.url.startswith("http://[::1]:")
        assert get_json(f"{running.url}/health") == {"status": "ok"}
        assert "Warning" not in running.output


def test_every_interface_warns_and_a_silent_connection_is_closed(weights):
    import socket
    import time

    with start_service(weights=weights, extra_args=["--host", "0.0.0.0", "--timeout", "1.5"]) as running:
        assert "Warning: listening on 0.0.0.0" in running.output
        address = urllib.parse.urlsplit(running.url)
        for opening in (b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsome"):
            with socket.create_connection(("127.0.0.1", address.port), timeout=10) as connection:
                connection.sendall(opening)
                began = time.perf_counter()
                while connection.recv(1000):  # an answer may come first; then the connection is closed
                    pass
                assert time.perf_counter() - began < 8, "a silent connection stays open"
        assert get_json(f"http://127.0.0.1:{address.port}/health") == {"status": "ok"}
