"""Decoding plugins, the memory cache and context windows on decoder-decoder bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.dolphin_models import CONTEXTS, QUESTIONS, export, make_dolphin

import edgert
from edgert.errors import InputError
from edgert.plugins.families.dolphin.memory_cache import MemoryCache, context_key


@pytest.fixture(scope="module")
def draft_bundle(tmp_path_factory):
    """Same tokenizer as the "dolphin" source, other weights and memory projector."""
    root = tmp_path_factory.mktemp("dolphin-draft")
    export(make_dolphin(root / "src", seed=7, projector="mlp"), root / "bundle")
    return root / "bundle"


@pytest.mark.parametrize("decoder", ["aggressive", "lookup", "speculative-self", "speculative"])
def test_lossless_decoders_equal_greedy(decoder, dolphin_bundles, draft_bundle):
    model = edgert.load(dolphin_bundles["dolphin"])
    options = {}
    if decoder == "speculative-self":
        # confidence 0: random weights give flat distributions the default cutoff would skip
        decoder, options = (
            "speculative",
            {"draft": str(dolphin_bundles["dolphin"]), "confidence": 0},
        )
    elif decoder == "speculative":
        options = {"draft": str(draft_bundle)}
    accepted = 0
    for context in CONTEXTS:
        for question in QUESTIONS:
            greedy = model.generate(question, context=context, max_new_tokens=16)
            fast = model.generate(question, context=context, decoder=decoder, max_new_tokens=16,
                                  **options)  # fmt: skip
            assert fast.token_ids == greedy.token_ids, (decoder, context, question)
            assert fast.stats["target_calls"] <= len(greedy.token_ids)
            accepted += fast.stats["accepted"]
    if options.get("draft") == str(dolphin_bundles["dolphin"]):
        assert accepted > 0  # the target drafting for itself is always right


def test_sampling_is_seeded(dolphin_bundles):
    model = edgert.load(dolphin_bundles["composition"])
    runs = [model.generate(QUESTIONS[0], context=CONTEXTS[0], decoder="sampling", seed=5,
                           temperature=1.3, max_new_tokens=12).token_ids for _ in range(2)]  # fmt: skip
    assert runs[0] == runs[1]
    other = model.generate(QUESTIONS[0], context=CONTEXTS[0], decoder="sampling", seed=6,
                           temperature=1.3, max_new_tokens=12).token_ids  # fmt: skip
    assert other != runs[0] or len(other) < 3


def test_cache_hit_skips_the_context_encoder(dolphin_bundles):
    model = edgert.load(dolphin_bundles["dolphin"])
    first = model.generate(QUESTIONS[0], context=CONTEXTS[0], max_new_tokens=4)
    calls = []
    run = model.memory_info.session.run
    model.memory_info.session.run = lambda *a, **k: calls.append(1) or run(*a, **k)
    second = model.generate(QUESTIONS[1], context=CONTEXTS[0], max_new_tokens=4)
    third = model.generate(QUESTIONS[1], context=CONTEXTS[1], max_new_tokens=4)
    assert first.stats["memory_cache_hit"] is False
    assert second.stats["memory_cache_hit"] is True and third.stats["memory_cache_hit"] is False
    assert len(calls) == 1  # only the new context was encoded
    assert model.memory_cache.hits == 1 and len(model.memory_cache) == 2


def test_memory_cache_is_bounded_by_bytes():
    rows = np.ones((4, 8), np.float32)  # 128 bytes
    cache = MemoryCache(max_bytes=300)
    keys = [context_key([i]) for i in range(3)]
    for key in keys:
        cache.put(key, rows)
    assert len(cache) == 2 and cache.bytes == 256
    assert cache.get(keys[0]) is None  # the least recently used went first
    assert cache.get(keys[2]) is not None
    cache.put(context_key([9]), np.ones((100, 8), np.float32))  # larger than the budget
    assert len(cache) == 2
    assert context_key([1, 2]) != context_key([1, 2], 2)  # chunking changes the key
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryCache(max_bytes=-1)


def test_long_context_rejected_or_chunked(dolphin_bundles):
    model = edgert.load(dolphin_bundles["dolphin"])
    window = model.context_window
    words = " ".join(["memory embeddings replace placeholder tokens"] * 60)
    tokens = len(model.context_tokenizer.encode(words).ids)
    assert tokens > window
    with pytest.raises(InputError) as info:
        model.generate(QUESTIONS[0], context=words)
    assert f"{tokens} tokens" in str(info.value) and str(window) in str(info.value)
    assert "chunk" in info.value.hint
    chunked = model.generate(QUESTIONS[0], context=words[: len(words) // 2],
                             context_policy="chunk", max_new_tokens=4)  # fmt: skip
    assert chunked.stats["context_chunks"] >= 2
    with pytest.raises(InputError, match="more than the 4"):
        model.generate(QUESTIONS[0], context=" ".join([words] * 3), context_policy="chunk")
    with pytest.raises(InputError, match="context_policy"):
        model.generate(QUESTIONS[0], context=CONTEXTS[0], context_policy="truncate")


def test_empty_context_and_question(dolphin_bundles):
    model = edgert.load(dolphin_bundles["dolphin"])
    for context in ("", "   "):
        with pytest.raises(InputError, match="context is empty") as info:
            model.generate(QUESTIONS[0], context=context)
        assert "context=" in info.value.hint
    with pytest.raises(InputError, match="question is empty"):
        model.generate("", context=CONTEXTS[0])


def test_cli_run_and_profile(dolphin_bundles, tmp_path, capsys):
    from helpers.cli import run

    context = tmp_path / "doc.txt"
    context.write_text(CONTEXTS[0], encoding="utf-8")
    bundle = str(dolphin_bundles["dolphin"])
    code, out, err = run(capsys, "run", bundle, QUESTIONS[0], "--context", str(context),
                         "--max-new-tokens", "5", "--json")  # fmt: skip
    assert code == 0, err
    model = edgert.load(bundle)
    expected = model.generate(QUESTIONS[0], context=CONTEXTS[0], max_new_tokens=5)
    assert json.loads(out)["token_ids"] == list(expected.token_ids)
    code, out, err = run(capsys, "run", bundle, QUESTIONS[0], "--stats", "--context", str(context))
    assert code == 0 and "context " in err and "tokens (encoded" in err
    code, _, err = run(capsys, "run", bundle, QUESTIONS[0])
    assert code != 0 and "--context" in err
    code, out, err = run(capsys, "profile", bundle, "--runs", "2", "--warmup", "0",
                         "--new-tokens", "4", "--context-tokens", "40", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["family"] == "dolphin" and report["memory_ms"]["p50"] > 0
    assert report["context_tokens"] == 40


def test_runs_without_torch(dolphin_bundles):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "optimum", "onnx"):
            sys.modules[name] = None  # any import of them now raises ImportError
        import edgert
        model = edgert.load({str(dolphin_bundles["dolphin"])!r})
        print(model.generate({QUESTIONS[0]!r}, context={CONTEXTS[0]!r}, max_new_tokens=6).token_ids)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    expected = edgert.load(dolphin_bundles["dolphin"]).generate(
        QUESTIONS[0], context=CONTEXTS[0], max_new_tokens=6
    )
    assert result.stdout.strip() == str(expected.token_ids)


def test_ask_app_reuses_the_memory(dolphin_bundles, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    document = tmp_path / "doc.txt"
    document.write_text(CONTEXTS[1], encoding="utf-8")
    app = Path(__file__).resolve().parents[2] / "apps" / "ask.py"
    result = subprocess.run(
        [sys.executable, str(app), str(dolphin_bundles["dolphin"]), str(document), *QUESTIONS[:2]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Q: ") == 2
    assert "[read the document" in result.stdout and "[cached memory" in result.stdout
