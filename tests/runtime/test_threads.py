"""One loaded model called from several threads, as a web app calls it: every caller gets
exactly its own answer, or a clear refusal; never another caller's tokens."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers.dolphin_models import CONTEXTS, QUESTIONS

import edgert
from edgert.errors import InputError

TEXTS = ["the quick brown fox", "a small model runs on the edge of the network", "please",
         "speculative decoding verifies drafted tokens"]  # fmt: skip


def test_concurrent_generations_each_get_their_own_tokens(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["t5v11"])
    calls = [(text, decoder) for text in TEXTS for decoder in ("greedy", "lookup", "beam")] * 3
    expected = {c: model.generate(c[0], decoder=c[1], max_new_tokens=10).token_ids for c in calls}
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda c: model.generate(c[0], decoder=c[1], max_new_tokens=10), calls))
    assert [g.token_ids for g in got] == [expected[c] for c in calls]


def test_concurrent_streams_are_queued_not_mixed(seq2seq_bundles):
    model = edgert.load(seq2seq_bundles["bart"])
    expected = {t: model.generate(t, max_new_tokens=10).text for t in TEXTS}
    results: dict[str, str] = {}

    def consume(text):
        results[text] = "".join(model.stream(text, max_new_tokens=10))

    threads = [threading.Thread(target=consume, args=(t,)) for t in TEXTS * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == expected


def streamed(bundles):
    """A model and an input whose answer streams in several pieces (random tiny models
    often answer special tokens only, which stream no text)."""
    for kind in ("bart", "t5v11", "marian", "t5"):
        model = edgert.load(bundles[kind])
        for text in TEXTS:
            if len(list(model.stream(text, max_new_tokens=10))) >= 2:
                return model, text
    pytest.fail("no test model streams two pieces")


def test_a_stream_may_be_finished_by_another_thread(seq2seq_bundles):
    """Servers iterate one response from whichever worker thread is free."""
    model, text = streamed(seq2seq_bundles)
    expected = model.generate(text, max_new_tokens=10).text
    stream = model.stream(text, max_new_tokens=10)
    first = next(stream)
    with ThreadPoolExecutor(max_workers=1) as pool:
        rest = pool.submit(lambda: "".join(stream)).result(timeout=60)
    assert first + rest == expected
    assert model.generate(text, max_new_tokens=10).text == expected  # the lock is free


def test_a_second_generation_on_the_thread_of_an_open_stream_is_refused(seq2seq_bundles):
    model, text = streamed(seq2seq_bundles)
    stream = model.stream(text, max_new_tokens=10)
    next(stream)
    with pytest.raises(InputError, match="still open") as info:
        model.generate(TEXTS[1], max_new_tokens=10)
    assert ".close()" in info.value.hint
    stream.close()
    assert model.generate(TEXTS[1], max_new_tokens=10).token_ids


def test_concurrent_questions_about_different_contexts(dolphin_bundles):
    model = edgert.load(dolphin_bundles["dolphin"])
    calls = [(q, c) for q in QUESTIONS for c in CONTEXTS] * 2
    expected = {c: model.generate(c[0], context=c[1], max_new_tokens=8).token_ids for c in calls}
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda c: model.generate(c[0], context=c[1], max_new_tokens=8), calls))
    assert [g.token_ids for g in got] == [expected[c] for c in calls]


def test_concurrent_speculative_decoding_with_its_encode_ahead_thread(seq2seq_bundles):
    """The draft model drafts on the caller's thread while the target encodes on edgert's
    worker: eight callers at once still get greedy's tokens each."""
    model = edgert.load(seq2seq_bundles["t5v11"])
    options = {"decoder": "speculative", "draft": str(seq2seq_bundles["t5v11"]),
               "max_new_tokens": 10}  # fmt: skip
    expected = {t: model.generate(t, max_new_tokens=10).token_ids for t in TEXTS}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: model.generate(t, **options).token_ids, TEXTS * 4))
    assert got == [expected[t] for t in TEXTS * 4]


def test_two_targets_sharing_one_draft_take_turns_on_it(seq2seq_bundles):
    """A draft bundle is loaded once per process and serves every target naming it; its
    cache holds one generation, so two targets' generations take turns on it."""
    first, second = edgert.load(seq2seq_bundles["t5v11"]), edgert.load(seq2seq_bundles["t5v11"])
    options = {"decoder": "speculative", "draft": str(seq2seq_bundles["t5v11"]),
               "confidence": 0, "max_new_tokens": 30}  # fmt: skip
    expected = {t: first.generate(t, max_new_tokens=30).token_ids for t in TEXTS}
    calls = [(model, text) for model in (first, second) for text in TEXTS] * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda c: c[0].generate(c[1], **options), calls))
    assert [g.token_ids for g in got] == [expected[text] for _, text in calls]
    assert sum(g.stats["accepted"] for g in got) > 0  # the draft really drafted


def test_decoder_decoder_targets_sharing_a_draft_keep_their_own_contexts(dolphin_bundles):
    """The draft reads each generation's context as memory of its own, under the draft's
    lock: a question about one context never drafts from another's memory."""
    path = dolphin_bundles["dolphin"]
    first, second = edgert.load(path), edgert.load(path)
    options = {"decoder": "speculative", "draft": str(path), "confidence": 0}
    calls = [(m, q, c) for m in (first, second) for q in QUESTIONS for c in CONTEXTS] * 3
    expected = {(q, c): first.generate(q, context=c, max_new_tokens=16).token_ids
                for _, q, c in calls}  # fmt: skip
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(
            lambda c: c[0].generate(c[1], context=c[2], max_new_tokens=16, **options), calls
        ))  # fmt: skip
    assert [g.token_ids for g in got] == [expected[q, c] for _, q, c in calls]
    assert sum(g.stats["accepted"] for g in got) > 0


def test_concurrent_classification(tiny_bundle):
    import numpy as np

    model = edgert.load(tiny_bundle)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 5)).astype(np.float32) for n in (1, 3, 7, 2) * 4]
    expected = [model.logits(b) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(model.logits, batches))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
