"""Lesson 08's helpers: prepare_digit, read_image's limits and errors, top_k, FileUpload values,
the font-digit test set and the augmentation."""

from __future__ import annotations

import datetime
import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import demo
from helpers.augment import RandomDistort, distort, train_robust_cnn, trained_robust_cnn
from helpers.core import to_input
from helpers.data import load_mnist
from helpers.demo import (
    ImageTooLargeError,
    NoInkError,
    NotAnImageError,
    UnreadableImageError,
    load_font_digits,
    preparation_steps,
    prepare_digit,
    raw_resize,
    read_image,
    top_k,
    uploaded_files,
)
from helpers.models import mnist_cnn
from helpers.training import read_record, save_weights, training_record
from tests.trained import briefly_trained_cnn


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def model(mnist):
    """The lesson's CNN trained briefly on the CPU: enough to tell digits apart."""
    return briefly_trained_cnn()


def page(mnist, index: int = 0, size: int = 200, offset: tuple[int, int] = (30, 50)) -> np.ndarray:
    """A test digit drawn big, dark on light paper, off-centre on a bigger page (uint8)."""
    digit = Image.fromarray(255 - mnist.test_images[index]).resize((size // 2, size // 2), Image.Resampling.BILINEAR)
    sheet = Image.new("L", (size, size + 40), 235)
    sheet.paste(digit, offset)
    return np.asarray(sheet)


def png(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two prepared digits, allowing a shift of one pixel either way.

    Centring moves a digit by whole pixels, so a little change in the ink can move it by one.
    """
    a, b = a.astype(int), b.astype(int)
    return min(float(np.abs(np.roll(a, (dy, dx), axis=(0, 1)) - b).mean()) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(np.float64)
    rows, cols = np.indices(image.shape)
    return float((rows * weights).sum() / weights.sum()), float((cols * weights).sum() / weights.sum())


# --- prepare_digit ------------------------------------------------------------------------


def test_prepare_digit_gives_an_mnist_style_image(mnist):
    prepared = prepare_digit(page(mnist))
    assert prepared.dtype == np.uint8 and prepared.shape == (28, 28)
    assert prepared.max() == 255  # the strongest ink is white, as in MNIST
    assert prepared[0].max() == 0 and prepared[:, 0].max() == 0  # black paper around the digit


def test_light_on_dark_and_dark_on_light_give_the_same_digit(mnist):
    dark_on_light = page(mnist, 3)
    light_on_dark = 255 - dark_on_light
    a, b = prepare_digit(dark_on_light), prepare_digit(light_on_dark)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # and the ink is white in both: the background was inverted where it was light
    assert a[0, 0] == 0 and a.mean() < 80


def test_centred_by_centre_of_mass(mnist):
    for index, offset in [(0, (0, 0)), (1, (95, 130)), (2, (50, 10))]:
        prepared = prepare_digit(page(mnist, index, offset=offset))
        row, col = centre_of_mass(prepared)
        assert abs(row - 14) <= 0.75 and abs(col - 14) <= 0.75, (index, row, col)


@pytest.mark.parametrize(("height", "width"), [(120, 30), (30, 150), (50, 50)])
def test_fits_in_20x20_keeping_the_aspect_ratio(height, width):
    sheet = np.full((300, 300), 255, np.uint8)
    sheet[40 : 40 + height, 100 : 100 + width] = 0
    prepared = prepare_digit(sheet)
    rows = np.flatnonzero(prepared.max(axis=1) > 0)
    cols = np.flatnonzero(prepared.max(axis=0) > 0)
    box_height, box_width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert max(box_height, box_width) == 20
    assert box_height / box_width == pytest.approx(height / width, rel=0.1)


def test_an_mnist_digit_is_almost_unchanged(mnist, model):
    images = mnist.test_images[:300]
    prepared = np.stack([prepare_digit(image) for image in images])
    assert np.abs(prepared.astype(int) - images.astype(int)).mean() < 4
    same = (model(to_input(prepared)).argmax(1) == model(to_input(images)).argmax(1)).float().mean()
    assert same >= 0.97


def test_every_input_kind_gives_the_same_digit(mnist, tmp_path):
    sheet = page(mnist, 5)
    expected = prepare_digit(sheet)
    path = tmp_path / "digit.png"
    path.write_bytes(png(sheet))
    kinds = {
        "PIL image": Image.fromarray(sheet),
        "bytes": png(sheet),
        "memoryview": memoryview(png(sheet)),
        "path": path,
        "str path": str(path),
        "float array 0-1": sheet / 255.0,
        "tensor": torch.from_numpy(sheet.copy()),
        "RGB array": np.repeat(sheet[..., None], 3, axis=2),
        "(H, W, 1) array": sheet[..., None],
    }
    for kind, image in kinds.items():
        assert np.abs(prepare_digit(image).astype(int) - expected.astype(int)).max() <= 1, kind


def test_transparency_counts_as_white_paper(mnist):
    sheet = page(mnist, 7)
    # black ink whose darkness is in the alpha channel, on fully transparent (black!) pixels
    rgba = np.zeros((*sheet.shape, 4), np.uint8)
    rgba[..., 3] = 255 - sheet
    expected = prepare_digit(sheet)
    for image in (rgba, Image.fromarray(rgba), png(rgba)):
        assert difference(prepare_digit(image), expected) < 3


@pytest.mark.parametrize("fmt", ["PNG-16bit", "PNG-palette-transparent", "JPEG", "GIF", "BMP", "PNG-LA"])
def test_accepted_formats(mnist, fmt):
    sheet = page(mnist, 11)
    expected = prepare_digit(sheet)
    gray = Image.fromarray(sheet)
    if fmt == "PNG-16bit":
        data = encode(Image.fromarray(sheet.astype(np.uint16) * 257), "PNG")
        assert read_image(data).mode.startswith("I")
    elif fmt == "PNG-palette-transparent":
        palette = gray.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        data = encode(palette, "PNG", transparency=int(np.asarray(palette)[0, 0]))  # the paper is transparent
    elif fmt == "GIF":
        blank = Image.new("L", gray.size, 255)
        data = encode(gray, "GIF", save_all=True, append_images=[blank], duration=100)  # the first frame counts
    elif fmt == "PNG-LA":
        data = encode(Image.merge("LA", [gray, Image.new("L", gray.size, 255)]), "PNG")
    else:
        data = encode(gray, fmt)
    assert difference(prepare_digit(data), expected) < 6, fmt


def test_a_big_photo_is_shrunk_first(mnist):
    sheet = Image.fromarray(page(mnist, 12)).resize((2400, 2880), Image.Resampling.BILINEAR)
    data = encode(sheet.convert("RGB"), "JPEG", quality=90)
    steps = preparation_steps(data)
    assert max(steps["grayscale"].shape) <= demo.WORKING_SIZE
    assert difference(steps["prepared"], prepare_digit(page(mnist, 12))) < 8


def test_raw_resize_keeps_the_paper_white(mnist):
    squeezed = raw_resize(page(mnist))
    assert squeezed.shape == (28, 28) and squeezed.dtype == np.uint8
    assert squeezed.mean() > 150  # mostly light paper, the opposite of an MNIST digit


def test_no_ink_is_an_error():
    for blank in (np.full((50, 40), 255, np.uint8), np.full((50, 40), 128, np.uint8), np.zeros((28, 28), np.uint8)):
        with pytest.raises(NoInkError, match="no ink"):
            prepare_digit(blank)
    faint = np.full((50, 50), 200, np.uint8)
    faint[20:30, 20:30] = 195  # 5 grey levels: not a digit
    with pytest.raises(NoInkError):
        prepare_digit(faint)


def test_bad_arrays_are_errors():
    with pytest.raises(UnreadableImageError, match="shape"):
        prepare_digit(np.zeros((2, 28, 28)))
    with pytest.raises(UnreadableImageError, match="shape"):
        prepare_digit(np.zeros((0, 5)))
    with pytest.raises(UnreadableImageError, match="NaN"):
        prepare_digit(np.full((28, 28), np.nan))
    with pytest.raises(TypeError, match="PIL image"):
        prepare_digit(["not", "an", "image"])
    with pytest.raises(FileNotFoundError):
        prepare_digit("no_such_file.png")


# --- read_image: limits and errors, each with its HTTP status ----------------------------------


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` pixels, with almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"\0" * min(height * (width + 1), 10_000))  # rows of zeros (filter byte + pixels)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_errors_and_their_statuses(mnist):
    good = png(page(mnist))
    tiff = encode(Image.fromarray(page(mnist)), "TIFF")
    cases = {
        "empty": (b"", UnreadableImageError, 400, "empty"),
        "text": (b"just some text, not a picture", NotAnImageError, 415, "not an image"),
        "pdf": (b"%PDF-1.4\n%\xe2\xe3", NotAnImageError, 415, "not an image"),
        "tiff": (tiff, NotAnImageError, 415, "PNG, JPEG, GIF, BMP"),
        "truncated": (good[: len(good) // 2], UnreadableImageError, 400, "cannot be"),
        "damaged header": (good[:8] + b"\0" * 40, UnreadableImageError, 400, "cannot be read"),
        "bomb": (bomb_png(100_000, 100_000), ImageTooLargeError, 413, "before decoding"),
        "too many bytes": (good + b"\0" * demo.MAX_BYTES, ImageTooLargeError, 413, "bytes"),
    }
    for name, (data, kind, status, words) in cases.items():
        with pytest.raises(kind, match=words) as caught:
            read_image(data)
        assert caught.value.status == status, name
        assert isinstance(caught.value, demo.DigitImageError)


def test_a_decompression_bomb_is_refused_from_its_header_alone():
    # 15,000 x 10,000 = 150 million pixels would need 150 MB decoded; refused without decoding
    with pytest.raises(ImageTooLargeError, match="150,000,000 pixels"):
        read_image(bomb_png(15_000, 10_000))
    with pytest.raises(ImageTooLargeError):  # over Pillow's own bomb limit too
        read_image(bomb_png(60_000, 60_000))
    assert read_image(bomb_png(50, 40)).size == (50, 40)  # the same header with a small size is fine


def test_limits_can_be_set():
    data = png(np.full((100, 100), 255, np.uint8))
    with pytest.raises(ImageTooLargeError):
        read_image(data, max_pixels=5_000)
    with pytest.raises(ImageTooLargeError):
        read_image(data, max_bytes=10)


# --- top_k --------------------------------------------------------------------------------------


def test_top_k_matches_the_softmax(mnist, model):
    image = mnist.test_images[0]
    answers = top_k(model, image, k=10)
    probabilities = torch.softmax(model(to_input(image)), dim=1)[0].detach()
    assert [digit for digit, _ in answers] == probabilities.argsort(descending=True).tolist()
    assert np.allclose([p for _, p in answers], probabilities.sort(descending=True).values.numpy(), atol=1e-6)
    assert sum(p for _, p in answers) == pytest.approx(1, abs=1e-5)
    assert top_k(model, image) == answers[:3]
    [(digit, probability)] = top_k(model, to_input(image), k=1)
    assert digit == answers[0][0] and probability == pytest.approx(answers[0][1], abs=1e-6)
    assert all(isinstance(d, int) and isinstance(p, float) for d, p in answers)


def test_top_k_errors_and_mode(model, mnist):
    with pytest.raises(ValueError, match="1 to 10"):
        top_k(model, mnist.test_images[0], k=0)
    with pytest.raises(ValueError, match="1 to 10"):
        top_k(model, mnist.test_images[0], k=11)
    with pytest.raises(ValueError, match="prepare_digit"):
        top_k(model, np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="one MNIST-style image"):
        top_k(model, mnist.test_images[:2])
    model.train()
    try:
        top_k(model, mnist.test_images[0])
        assert model.training, "top_k leaves the model's mode as it was"
    finally:
        model.eval()


# --- FileUpload values: ipywidgets 7 (Colab) and 8 (JupyterLab) -----------------------------------


def test_uploaded_files_from_ipywidgets_8():
    content = b"\x89PNG fake bytes"
    value = (
        {
            "name": "seven.png",
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        },
    )
    assert uploaded_files(value) == [("seven.png", content)]
    assert uploaded_files(()) == []


def test_uploaded_files_from_a_real_ipywidgets_8_fileupload():
    ipywidgets = pytest.importorskip("ipywidgets")
    if int(ipywidgets.__version__.split(".")[0]) < 8:
        pytest.skip("ipywidgets 7 installed; its dict format is tested below")
    upload = ipywidgets.FileUpload(accept="image/*")
    assert uploaded_files(upload.value) == []
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    upload.value = (
        {"name": "a.png", "type": "image/png", "size": 3, "content": memoryview(b"abc"), "last_modified": when},
        {"name": "b.png", "type": "image/png", "size": 2, "content": memoryview(b"de"), "last_modified": when},
    )
    assert uploaded_files(upload.value) == [("a.png", b"abc"), ("b.png", b"de")]


def test_uploaded_files_from_ipywidgets_7():
    # ipywidgets 7.7 (Colab): a dict from file name to {"metadata": {...}, "content": bytes}
    value = {
        "three.jpg": {
            "metadata": {"name": "three.jpg", "type": "image/jpeg", "size": 4, "lastModified": 1767225600000},
            "content": b"\xff\xd8\xff\xe0",
        }
    }
    assert uploaded_files(value) == [("three.jpg", b"\xff\xd8\xff\xe0")]
    assert uploaded_files({}) == []


def test_uploaded_files_errors():
    assert uploaded_files(None) == []
    with pytest.raises(TypeError, match="FileUpload value"):
        uploaded_files("a.png")
    with pytest.raises(TypeError, match="content"):
        uploaded_files({"a.png": {"metadata": {}}})


def test_gallery_widget_and_static_figure(mnist, model):
    import matplotlib.pyplot as plt

    figure = demo.show_gallery(model, mnist.test_images, mnist.test_labels, [0, 1, 2])
    assert len(figure.axes) >= 6
    plt.close(figure)
    ipywidgets = pytest.importorskip("ipywidgets")
    gallery = demo.digit_gallery(model, mnist.test_images, mnist.test_labels, [0, 1, 2])
    assert isinstance(gallery, ipywidgets.VBox)
    grid, heading, bars = gallery.children
    button = grid.children[0].children[1].children[1]
    button.click()  # as a learner's click does
    label = int(mnist.test_labels[1])
    assert f"true label <b>{label}</b>" in heading.value
    values = [row.children[1].value for row in bars.children]
    expected = top_k(model, mnist.test_images[1])
    assert values == pytest.approx([p for _, p in expected])


# --- the font-digit test set --------------------------------------------------------------------


def test_font_digits_file_matches_its_md5_and_readme():
    data = demo.FONT_DIGITS_PATH.read_bytes()
    assert hashlib.md5(data).hexdigest() == demo.FONT_DIGITS_MD5
    readme = (demo.FONT_DIGITS_PATH.parent / "README.md").read_text()
    assert demo.FONT_DIGITS_MD5 in readme


def test_font_digits_content():
    fonts = load_font_digits()
    assert len(fonts) >= 500
    assert fonts.paper.shape == (len(fonts), 64, 64) and fonts.paper.dtype == np.uint8
    assert fonts.images.shape == (len(fonts), 28, 28) and fonts.images.dtype == np.uint8
    assert np.bincount(fonts.labels).tolist() == [len(fonts) // 10] * 10
    assert set(fonts.font) == {"DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"}
    assert set(fonts.style) == {"regular", "bold", "oblique"}
    assert len(set(fonts.size)) >= 3 and len(set(fonts.stroke)) >= 2
    assert np.abs(fonts.rotation).max() <= 10
    border = np.concatenate([fonts.paper[:, 0], fonts.paper[:, -1]], axis=1)
    assert border.mean(axis=1).min() > 150, "dark ink on light paper"
    # each page prepared MNIST-style: white ink on black, centred by mass
    assert (fonts.images[:, 0].max(axis=1) == 0).all()
    rows, cols = zip(*(centre_of_mass(image) for image in fonts.images[::25]), strict=True)
    assert np.abs(np.array(rows) - 14).max() <= 0.75 and np.abs(np.array(cols) - 14).max() <= 0.75


def test_font_digits_damaged_file_is_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "font_digits.npz"
    damaged.write_bytes(demo.FONT_DIGITS_PATH.read_bytes()[:-10])
    monkeypatch.setattr(demo, "FONT_DIGITS_PATH", damaged)
    with pytest.raises(ValueError, match="damaged"):
        load_font_digits()
    with pytest.raises(FileNotFoundError, match="make_font_digits"):
        load_font_digits(tmp_path / "missing.npz")


def test_font_digits_rebuild_gives_the_same_pages():
    from PIL import features

    from tools import make_font_digits

    if features.version("freetype2") != "2.14.3":
        pytest.skip(f"built with FreeType 2.14.3; this machine has {features.version('freetype2')}")
    rebuilt = make_font_digits.build()
    committed = load_font_digits()
    assert np.array_equal(rebuilt["paper"], committed.paper)
    assert np.array_equal(rebuilt["labels"], committed.labels)


# --- augmentation -------------------------------------------------------------------------------


def test_distortion_is_off_when_evaluating_and_on_when_training(mnist):
    x = to_input(mnist.train_images[:64])
    layer = RandomDistort()
    assert torch.equal(layer.eval()(x), x)
    out = layer.train()(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    lowest = (0 - 0.1307) / 0.3081
    assert out.min() >= lowest - 1e-5 and out.max() <= (1 - 0.1307) / 0.3081 + 1e-5


def test_distortion_is_reproducible_and_varies_per_image(mnist):
    images = np.repeat(mnist.train_images[:1], 8, axis=0)  # one digit eight times
    a, b = distort(images, seed=1), distort(images, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, distort(images, seed=2))
    assert len({bytes(image.numpy()) for image in a}) == 8, "each copy distorted its own way"


def test_distortion_with_nothing_to_do_is_the_identity(mnist):
    x = to_input(mnist.train_images[:16])
    layer = RandomDistort(rotation=0, shear=0, scale=(1, 1), shift=0, thickness=(0, 0), blur=0)
    assert torch.allclose(layer.distort(x), x, atol=1e-5)


def test_thickening_is_a_maximum_filter(mnist):
    x = to_input(mnist.train_images[:16])
    layer = RandomDistort(rotation=0, shear=0, scale=(1, 1), shift=0, thickness=(1, 1), blur=0)
    pixels = x * 0.3081 + 0.1307
    expected = (torch.nn.functional.max_pool2d(pixels, 3, stride=1, padding=1) - 0.1307) / 0.3081
    assert torch.allclose(layer.distort(x), expected, atol=1e-5)


def test_max_filter_is_a_stride_1_max_pool(mnist):
    from helpers.augment import max_filter

    x = torch.randn(5, 1, 28, 28)
    assert torch.equal(max_filter(x), torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1))
    assert torch.equal(-max_filter(-x), -torch.nn.functional.max_pool2d(-x, 3, stride=1, padding=1))


def test_distortion_bad_settings():
    with pytest.raises(ValueError, match="scale"):
        RandomDistort(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="thickness"):
        RandomDistort(thickness=(-2, 1))
    with pytest.raises(ValueError, match="N, 1, H, W"):
        RandomDistort().distort(torch.zeros(3, 28, 28))


def test_train_robust_cnn_returns_the_bare_model(mnist, tmp_path):
    model, history = train_robust_cnn(
        mnist.train_images[:500], mnist.train_labels[:500], epochs=1, device="cpu", progress=False
    )
    assert not model.training and len(history) == 1
    assert not any(isinstance(m, RandomDistort) for m in model.modules())
    # Saved with a record of the data it used (450 training images: 500 minus the validation split)...
    record = training_record("sample", 450, recipe={"epochs": 1, "augmentation": True}, seed=0, device="cpu")
    path = save_weights(model, tmp_path / "robust.pt", record=record)
    loaded = trained_robust_cnn(path, data=_FirstImages(mnist, 500), device="cpu")  # ...it is loaded, not retrained
    x = to_input(mnist.test_images[:8])
    assert torch.allclose(loaded(x), model(x), atol=1e-5)
    assert loaded.training_record == record


class _FirstImages:
    """Stands in for load_mnist()'s result: its first ``count`` training images."""

    def __init__(self, mnist, count, source="sample"):
        self.train_images, self.train_labels = mnist.train_images[:count], mnist.train_labels[:count]
        self.source = source


def test_trained_robust_cnn_retrains_a_model_of_another_copy_of_the_data(mnist, tmp_path, capsys):
    path = tmp_path / "robust.pt"
    torch.save(mnist_cnn().state_dict(), path)  # an old file, without a record
    model = trained_robust_cnn(path, data=_FirstImages(mnist, 100, source="full"), device="cpu", progress=False)
    assert "Retraining the augmented model" in capsys.readouterr().out
    assert model.training_record["source"] == "full" and model.training_record["recipe"]["augmentation"]
    assert read_record(path) == model.training_record


# --- read_digit: photos, pages, screenshots, transparency, orientation, and an honest "cannot read" --------


def clean_reference(mnist, index: int) -> np.ndarray:
    return demo.prepare_digit(mnist.test_images[index])


def scene(mnist, index: int, size=(900, 1200), digit_height: int = 400, at=(250, 450)) -> np.ndarray:
    """A test digit as dark ink (float 0-1 brightness) on a page of ``size`` (rows, columns) lit by a gradient."""
    rows, cols = size
    paper = np.linspace(0.95, 0.45, cols)[None, :] * np.ones((rows, 1))  # lit from the left, grey on the right
    ink = np.asarray(Image.fromarray(mnist.test_images[index]).resize((digit_height, digit_height)), np.float32) / 255
    top, left = at
    region = paper[top : top + digit_height, left : left + digit_height]
    paper[top : top + digit_height, left : left + digit_height] = region * (1 - ink) + 0.1 * ink
    return paper


def jpeg(gray: np.ndarray, quality: int = 80, **options) -> bytes:
    return encode(Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8)), "JPEG", quality=quality, **options)


def test_a_photo_with_a_gradient_noise_and_blur_is_read(mnist):
    """Issue 21's photo-like 7 (1200x900, grey gradient, noise, blur, JPEG) came back '8, 94.6%' before."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    photo = ndimage.gaussian_filter(scene(mnist, 0), 2) + rng.normal(0, 0.03, (900, 1200))
    prepared, readable, reason = demo.read_digit(jpeg(photo, 70))
    assert readable, reason
    assert difference(prepared, clean_reference(mnist, 0)) < 20
    steps = demo.preparation_steps(jpeg(photo, 70))
    assert list(steps)[:4] == ["grayscale", "background", "ink", "mask"] and "digit" in steps


def test_ruled_lines_and_text_around_are_dropped(mnist):
    from PIL import ImageDraw

    page = scene(mnist, 1, size=(600, 800), digit_height=300, at=(150, 250))
    for y in range(40, 600, 60):  # ruled lines across the page and the digit
        page[y : y + 2] = 0.55
    page[:, 90:92] = 0.5  # a margin
    prepared, readable, reason = demo.read_digit(page)
    assert readable, reason
    assert difference(prepared, clean_reference(mnist, 1)) < 20
    # A screenshot: lines of text above and below a bigger digit.
    shot = Image.fromarray(np.round(scene(mnist, 2, (500, 700), 220, (140, 300)) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(shot)
    for y in list(range(10, 120, 18)) + list(range(380, 490, 18)):
        draw.text((10, y), "the model answers with its three best guesses", fill=30)
    prepared, readable, reason = demo.read_digit(np.asarray(shot))
    assert readable, reason
    assert difference(prepared, clean_reference(mnist, 2)) < 20


def test_light_strokes_on_a_transparent_background_are_laid_on_black(mnist):
    ink = mnist.test_images[3]
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255  # white strokes ...
    rgba[..., 3] = ink  # ... whose shape is in the alpha channel
    for image in (rgba, png(rgba)):
        prepared, readable, reason = demo.read_digit(image)
        assert readable, reason
        assert difference(prepared, clean_reference(mnist, 3)) < 10


def test_the_exif_orientation_is_applied(mnist):
    upright = scene(mnist, 4, size=(300, 400), digit_height=200, at=(50, 100))
    turned = np.rot90(upright, -1)  # stored turned a quarter clockwise ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... and the tag says: turn it back
    image = demo.read_image(jpeg(turned, 90, exif=exif.tobytes()))
    assert image.size == (400, 300)
    assert difference(demo.prepare_digit(image), demo.prepare_digit(jpeg(upright, 90))) < 6


def test_a_big_png_is_reduced_while_decoding(mnist):
    side = 5000
    big = Image.new("L", (side, side), 255)
    big.paste(Image.fromarray(255 - mnist.test_images[0]).resize((2000, 2000)), (1500, 1500))
    image = demo.read_image(encode(big, "PNG", compress_level=1))
    assert max(image.size) <= 2 * demo.SOURCE_SIZE
    assert demo.read_digit(image)[1]


def test_pictures_that_are_not_one_digit_are_declined_with_a_reason(mnist):
    three = 255 - np.concatenate([mnist.test_images[i] for i in range(3)], axis=1)
    cases = {
        "several digits": (np.pad(three, 10, constant_values=255), "marks of about the same size"),
        "a solid block": (np.pad(np.zeros((80, 60), np.uint8), 40, constant_values=255), "solid block"),
        "a dash": (np.pad(np.zeros((6, 60), np.uint8), 40, constant_values=255), "wide"),
        "a speck": (np.pad(np.zeros((3, 3), np.uint8), (30, 60), constant_values=255), "too small"),
    }
    for name, (picture, words) in cases.items():
        prepared, readable, reason = demo.read_digit(picture)
        assert not readable and words in reason, (name, reason)
        assert prepared.shape == (28, 28) and prepared.dtype == np.uint8
    lines = np.full((200, 300), 240, np.uint8)
    lines[::25] = 120
    with pytest.raises(NoInkError, match="straight lines"):
        demo.read_digit(lines)


def test_judge_adds_the_models_doubt():
    assert demo.judge(True, None, [(7, 0.97), (1, 0.02)]) == (True, None)
    readable, reason = demo.judge(True, None, [(3, 0.41), (5, 0.40)])
    assert not readable and "unsure" in reason and "3" in reason and "41%" in reason
    assert demo.judge(False, "several marks", [(7, 0.99)]) == (False, "several marks")


def test_a_negative_is_read_exactly_as_the_picture(mnist):
    photo = np.round(scene(mnist, 5, size=(210, 260), digit_height=150, at=(30, 95)) * 255).astype(np.uint8)
    assert np.array_equal(demo.prepare_digit(photo), demo.prepare_digit(255 - photo))
