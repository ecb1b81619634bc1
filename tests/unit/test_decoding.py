"""The step interface and greedy decoding, on a pure-numpy counting model."""

from __future__ import annotations

import pytest
from helpers.step_models import CountingModel

from edgert.decoding import StepModel
from edgert.errors import InputError
from edgert.plugins.decoding.greedy import GreedyDecoder, GreedyOptions


def test_counting_model_satisfies_the_protocol():
    assert isinstance(CountingModel(), StepModel)


def test_greedy_is_the_argmax_chain():
    model = CountingModel()
    out = list(GreedyDecoder().decode(model, [3], GreedyOptions(max_new_tokens=5)))
    assert out == [4, 5, 6, 7, 8]
    assert model.calls == 4  # the last token is never fed back


def test_greedy_stops_at_a_stop_id():
    out = list(
        GreedyDecoder().decode(CountingModel(), [3], GreedyOptions(max_new_tokens=9, stop_ids=(6,)))
    )
    assert out == [4, 5, 6]


def test_options_are_validated_and_frozen():
    with pytest.raises(InputError, match="max_new_tokens must be a positive integer, got 0"):
        GreedyOptions(max_new_tokens=0)
    options = GreedyOptions()
    with pytest.raises(AttributeError):
        options.max_new_tokens = 3
