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
        ("tiff", tiff, "x.tiff", 415, "PNG, JPEG, GIF or BMP"),
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
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{path}: {expected[0][0]} (")
    assert line.count(", then ") == 2
    result = subprocess.run([*command, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "not an image" in result.stderr
