"""Lesson 07's notebook: exercises (solutions pass, undone ones wait, wrong ones get their hint) and structure."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

from helpers.data import load_mnist
from helpers.features import embed, nearest, precision_at_k
from helpers.training import trained_mnist_cnn
from tests.nbtools import NOTEBOOKS, cells, exercises, imports_namespace, run_self_check, source

matplotlib.use("Agg")

NOTEBOOK = "07_deep_features.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace():
    """What the exercises use from the lesson: the imports, the data, the model and its test features."""
    names = imports_namespace(NOTEBOOK)
    device = names["pick_device"]()
    mnist = load_mnist()
    model = trained_mnist_cnn(data=mnist).to(device)
    names.update(
        device=device,
        mnist=mnist,
        model=model,
        test_images=mnist.test_images,
        test_labels=mnist.test_labels,
        test_features=embed(model, mnist.test_images),
    )
    return names


@pytest.fixture(scope="module")
def truths(namespace):
    """The right answers, computed here independently of the notebook's checks."""
    features, labels = namespace["test_features"], namespace["test_labels"]
    images = namespace["test_images"][:2000]
    scores = {
        name: precision_at_k(embed(namespace["model"], images, layer=name), labels[:2000])
        for name in ("relu1", "relu2", "relu3", "fc")
    }
    found, _ = nearest(features, features, 1, exclude_self=True)
    neighbour = found[:, 0].cpu().numpy()
    rows = features[:2000]
    distances = torch.cdist(rows, rows)
    distances.fill_diagonal_(float("inf"))
    close = distances.topk(10, largest=False).indices.cpu().numpy()
    with_self = torch.cdist(rows, rows).topk(10, largest=False).indices.cpu().numpy()  # query left in
    return {
        "layers": scores,
        "wrong_share": float(np.mean(labels[neighbour] != labels)),
        "euclidean": float(np.mean(labels[:2000][close] == labels[:2000, None])),
        "euclidean_with_self": float(np.mean(labels[:2000][with_self] == labels[:2000, None])),
        "cosine_2000": precision_at_k(rows, labels[:2000]),
    }


def run_check(namespace, index, answer_code, capsys):
    printed = run_self_check(EXERCISES[index], namespace, answer_code, capsys)
    matplotlib.pyplot.close("all")
    return printed


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_solution_passes_its_self_check(namespace, index, capsys):
    names = dict(namespace)
    exec(EXERCISES[index]["solution"], names)
    matplotlib.pyplot.close("all")
    capsys.readouterr()
    exec(EXERCISES[index]["check"], names)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_undone_exercise_says_so_without_raising(namespace, index, capsys):
    names = dict(namespace)
    exec(EXERCISES[index]["your_turn"], names)
    exec(EXERCISES[index]["check"], names)
    assert "⏳" in capsys.readouterr().out


# Exercise 1: which layer searches best


def test_best_layer_accepts_the_best_and_the_same_numbers_by_another_name(namespace, truths, capsys):
    scores = truths["layers"]
    best = max(scores, key=scores.get)
    assert "✅" in run_check(namespace, 0, f"best_layer = {best!r}", capsys)
    if best == "relu3":
        assert "✅" in run_check(namespace, 0, "best_layer = 'flatten'", capsys)


def test_best_layer_deeper_searches_better(truths):
    scores = truths["layers"]
    assert scores["relu1"] < scores["relu2"] < scores["relu3"]


def test_best_layer_wrong_answers_get_specific_hints(namespace, truths, capsys):
    out = run_check(namespace, 0, "best_layer = 'relu1'", capsys)
    assert "❌" in out and "for each name" in out
    out = run_check(namespace, 0, "best_layer = 'conv9'", capsys)
    assert "❌" in out and "Give one of the names" in out
    out = run_check(namespace, 0, "best_layer = 3", capsys)
    assert "❌" in out and "as a string" in out
    scores = truths["layers"]
    if scores["relu3"] < max(scores.values()) - 0.002:  # relu3 is not (nearly) the best here
        out = run_check(namespace, 0, "best_layer = 'relu3'", capsys)
        assert "❌" in out and "the layer we used" in out and "compute all four" in out
        assert "fc" not in out, "the hint does not name the answer"


# Exercise 2: a wrongly labelled neighbour


def test_wrong_share_accepts_the_value_and_three_decimals(namespace, truths, capsys):
    true = truths["wrong_share"]
    assert 0 < true < 0.05
    assert "✅" in run_check(namespace, 1, f"wrong_share = {true!r}", capsys)
    assert "✅" in run_check(namespace, 1, f"wrong_share = {round(true, 3)!r}", capsys)
    count = round(true * 10_000)
    assert "✅" in run_check(namespace, 1, f"wrong_share = {count} / 10_000", capsys)
    # a mean taken in torch, as the check's own code does, is a one-number tensor (and may be float32)
    assert "✅" in run_check(namespace, 1, f"wrong_share = torch.tensor({true!r})", capsys)
    assert "✅" in run_check(namespace, 1, f"wrong_share = np.float32({true!r})", capsys)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("0", "found itself"),
        ("0.0", "found itself"),
        ("100 * TRUE", "percentage"),
        ("round(100 * TRUE, 1)", "percentage"),
        ("round(TRUE * 10_000)", "count of digits"),
        ("np.int64(round(TRUE * 10_000))", "count of digits"),  # mask.sum() of a numpy mask
        ("torch.tensor(round(TRUE * 10_000))", "count of digits"),  # the same in torch
        ("torch.tensor(100 * TRUE)", "percentage"),
        ("1 - TRUE", "*same* label"),
        ("'1%'", "one number"),
    ],
)
def test_wrong_share_common_mistakes_get_their_hint(namespace, truths, capsys, answer, words):
    out = run_check(namespace, 1, f"TRUE = {truths['wrong_share']!r}\nwrong_share = {answer}", capsys)
    assert "❌" in out and words in out


def test_wrong_share_rounded_to_two_decimals_is_told_so(namespace, truths, capsys):
    true = truths["wrong_share"]
    if abs(round(true, 2) - true) <= 0.0006 or round(true, 2) == 0:
        pytest.skip(f"two decimals ({round(true, 2)}) are close enough to {true:.4f}, or zero")
    out = run_check(namespace, 1, f"wrong_share = {round(true, 2)!r}", capsys)
    assert "❌" in out and "rounded too much" in out


# Exercise 3: cosine or Euclidean


def test_euclidean_accepts_the_value_and_three_decimals(namespace, truths, capsys):
    true = truths["euclidean"]
    assert "✅" in run_check(namespace, 2, f"euclidean_precision = {true!r}", capsys)
    assert "✅" in run_check(namespace, 2, f"euclidean_precision = {round(true, 3)!r}", capsys)
    assert "✅" in run_check(namespace, 2, f"euclidean_precision = torch.tensor({true!r})", capsys)


def test_euclidean_on_unit_rows_is_the_cosine_ranking(namespace, truths):
    rows = torch.nn.functional.normalize(namespace["test_features"][:2000], dim=1)
    labels = namespace["test_labels"][:2000]
    distances = torch.cdist(rows, rows)
    distances.fill_diagonal_(float("inf"))
    close = distances.topk(10, largest=False).indices.cpu().numpy()
    assert np.mean(labels[close] == labels[:, None]) == pytest.approx(truths["cosine_2000"], abs=2e-4)


def test_euclidean_common_mistakes_get_their_hint(namespace, truths, capsys):
    true, cosine, with_self = truths["euclidean"], truths["cosine_2000"], truths["euclidean_with_self"]
    assert abs(true - cosine) > 0.002, "the cosine hint needs the two to differ"
    assert abs(true - with_self) > 0.002, "leaving each query in must not pass as right"
    assert abs(with_self - cosine) > 0.001, "the two wrong answers need their own hints"
    cases = [
        (f"{100 * true!r}", "percentage"),
        (f"{cosine!r}", "cosine result"),
        (f"{with_self!r}", "found itself"),  # the diagonal not filled: each query among its 10
        (f"{round(with_self, 3)!r}", "found itself"),
        ("'95%'", "one number"),
    ]
    if round(true, 2) != round(true, 3) and abs(round(true, 2) - true) > 0.002:
        cases.append((f"{round(true, 2)!r}", "rounded too much"))
    for answer, words in cases:
        out = run_check(namespace, 2, f"euclidean_precision = {answer}", capsys)
        assert "❌" in out and words in out, (answer, out)


# The notebook itself


def test_the_cut_is_written_inline_before_the_helper_and_checked_equal():
    code = [source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code"]
    first_cut = next(i for i, text in enumerate(code) if "model[:-1]" in text)
    first_embed = next(i for i, text in enumerate(code) if "embed(model" in text)
    assert first_cut < first_embed
    assert code[first_embed].startswith("# NBVAL_CHECK_OUTPUT") and "same as our cut" in code[first_embed]


def test_stored_run_passes_both_acceptance_checks():
    outputs = []
    for cell in cells(NOTEBOOK):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                outputs.append("".join(output["text"]))
    text = "\n".join(outputs)
    assert "beat pixels by over 5 points at every label count: PASS" in text
    assert re.search(r"precision@10 \+\d+\.\d points over pixels \(at least \+5\): PASS", text)
    assert "FAIL" not in text


def test_colab_gpu_runtime_metadata():
    import json

    metadata = json.loads((NOTEBOOKS / NOTEBOOK).read_text(encoding="utf-8"))["metadata"]
    assert metadata["accelerator"] == "GPU"
    assert metadata["colab"]["gpuType"] == "T4"


def test_glossary_links_point_at_existing_anchors():
    glossary = (NOTEBOOKS / "GLOSSARY.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', glossary))
    text = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "markdown")
    links = set(re.findall(r"GLOSSARY\.md#([\w-]+)", text))
    assert links, "the lesson links its terms to the glossary"
    assert links <= anchors, f"no such glossary entries: {sorted(links - anchors)}"
