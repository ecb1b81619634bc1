"""The runtime imports and runs a bundle with torch (and transformers) unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def test_runtime_runs_without_torch(tiny_bundle):
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "optimum", "onnx"):
            sys.modules[name] = None  # any import of them now raises ImportError
        import numpy as np
        import edgert
        model = edgert.load({str(tiny_bundle)!r})
        print(model.classify(np.ones((1, 5), np.float32), top_k=1)[0].label)
        from edgert.cli import main
        main(["devices", "list", "--json"])
        leaked = [m for m in ("torch", "transformers") if sys.modules.get(m) is not None]
        assert not leaked, leaked
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "owl"


def test_text_bundles_run_without_torch(seq2seq_bundles, dolphin_bundles):
    """A seq2seq and a decoder-decoder bundle load and decode (greedy and a lossless
    decoder) with torch unimportable, and give the tokens they give beside torch."""
    from helpers.dolphin_models import CONTEXTS, QUESTIONS

    import edgert

    seq2seq, dolphin = seq2seq_bundles["t5"], dolphin_bundles["dolphin"]
    expected = [
        list(edgert.load(seq2seq).generate("the quick brown fox", max_new_tokens=8).token_ids),
        list(
            edgert.load(dolphin)
            .generate(QUESTIONS[0], context=CONTEXTS[0], max_new_tokens=8)
            .token_ids
        ),
    ]
    script = textwrap.dedent(
        f"""
        import json, sys
        for name in ("torch", "transformers", "optimum", "onnx"):
            sys.modules[name] = None
        import edgert
        text = edgert.load({str(seq2seq)!r})
        qa = edgert.load({str(dolphin)!r})
        got = [
            list(text.generate("the quick brown fox", max_new_tokens=8).token_ids),
            list(qa.generate({QUESTIONS[0]!r}, context={CONTEXTS[0]!r}, max_new_tokens=8).token_ids),
            list(text.generate("the quick brown fox", max_new_tokens=8, decoder="lookup").token_ids),
        ]
        leaked = [m for m in ("torch", "transformers") if sys.modules.get(m) is not None]
        assert not leaked, leaked
        print(json.dumps(got))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.splitlines()[-1])
    assert got[:2] == expected
    assert got[2] == expected[0]  # lossless: the same tokens as greedy
