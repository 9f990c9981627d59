"""Lesson 07's notebook: its structure, facts its exercises rely on, and prose that reads the data from the run.

The answers themselves are tried in ``tests/trials/lesson_07.py``.
"""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

from helpers.features import embed, precision_at_k
from tests.nbtools import NOTEBOOKS, cells, exercises, source
from tests.trials import lesson_07 as trials

matplotlib.use("Agg")

NOTEBOOK = "07_deep_features.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """The exercises' namespace of ``tests/trials/lesson_07.py``: a briefly trained model and its features."""
    with trials.namespace(tmp_path_factory.mktemp("lesson07")) as names:
        yield names


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


def test_deeper_layers_search_better(namespace):
    images, labels = namespace["test_images"][:2000], namespace["test_labels"][:2000]
    scores = {
        name: precision_at_k(embed(namespace["model"], images, layer=name), labels)
        for name in ("relu1", "relu2", "relu3")
    }
    assert scores["relu1"] < scores["relu2"] < scores["relu3"]


def test_euclidean_on_unit_rows_is_the_cosine_ranking(namespace):
    """Exercise 3's solution says so: on rows of length 1, Euclidean and cosine rank alike."""
    rows = torch.nn.functional.normalize(namespace["test_features"][:2000], dim=1)
    labels = namespace["test_labels"][:2000]
    distances = torch.cdist(rows, rows)
    distances.fill_diagonal_(float("inf"))
    close = distances.topk(10, largest=False).indices.cpu().numpy()
    cosine = precision_at_k(namespace["test_features"][:2000], labels)
    assert np.mean(labels[close] == labels[:, None]) == pytest.approx(cosine, abs=2e-4)


def test_every_check_reads_numbers_through_as_number():
    for exercise in EXERCISES[1:]:  # Exercise 1's answer is a layer's name
        assert "as_number(" in exercise["check"] and "def as_number" not in exercise["check"]


def test_the_model_says_what_trained_it_and_prose_names_no_data_count():
    code = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")
    assert "describe_record(model.training_record)" in code
    assert 'cnn_labels = model.training_record["train_images"]' in code
    assert "len(train_images):,} labels" not in code, "the CNN's labels are read from its record"
    markdown = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "markdown")
    assert not re.search(r"9,000|10,000|54,000|60,000|4,400", markdown), "counts are printed from the run"
    assert not re.search(r"9,000|54,000|60,000|4,400", code), "counts are read from the run"


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
