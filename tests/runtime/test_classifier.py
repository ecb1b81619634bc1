"""Classifier input checks and outputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.bundles import make_bundle

import edgert
from edgert.errors import InputError


@pytest.fixture
def model(tiny_bundle):
    return edgert.load(tiny_bundle)


def test_classify_returns_sorted_topk_probabilities(model):
    x = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, -1]], np.float32)
    predictions = model.classify(x, top_k=3)
    assert [p.label for p in predictions] == ["owl", "cat"]
    for p in predictions:
        assert list(p.scores) == sorted(p.scores, reverse=True)
        assert sum(p.scores) == pytest.approx(1.0)


def test_logits_match_the_graph(model):
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    weights = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    np.testing.assert_allclose(model.logits(x), x @ weights, rtol=1e-5)


def test_wrong_shape(model):
    with pytest.raises(InputError) as info:
        model.classify(np.zeros((2, 6), np.float32))
    assert "input shape (2, 6) does not match the model input ('N', 5)" in str(info.value)
    assert "(batch, 5)" in info.value.hint


def test_wrong_dtype(model):
    with pytest.raises(InputError, match="expects float32 input, got dtype int64"):
        model.classify(np.zeros((2, 5), np.int64))


def test_not_an_array(model):
    with pytest.raises(InputError, match="expects a numpy array, got list"):
        model.classify([[0.0] * 5])


def test_float64_is_converted_and_single_sample_accepted(model):
    assert model.classify(np.zeros(5, np.float64))[0].labels


def test_bad_top_k(model):
    with pytest.raises(InputError, match="top_k must be a positive integer"):
        model.classify(np.zeros((1, 5), np.float32), top_k=0)


def test_fixed_batch_graph_runs_any_batch(tmp_path):
    model = edgert.load(make_bundle(tmp_path / "static", batch=1))
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    weights = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    np.testing.assert_allclose(model.logits(x), x @ weights, rtol=1e-5)
