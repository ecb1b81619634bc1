"""What a speller's size costs per call on this CPU: the measurement a new default's size
is chosen by.

For T5 spellers from the embedded one (1.3M parameters) up to ~20M, with a byte-level BPE
of real English (trained here on ``tools/speller_corpus.py``'s prose), each exported for
``--device auto`` (this machine's int8 profile) and for ``cpu-generic`` (fp32), it times
on held-out sentences with one typo:

* outside: the cost of a generation outside the model's graphs (tokenizing, the decoding
  loop, detokenizing: Python), measured as a whole ``generate()`` of 24 tokens minus the
  time inside its encoder and decoder calls, per input and per token;
* encoder: one encoder call over the sentence;
* step: one decoder call for one new token (cache of the sentence's length);
* verify/row: one decoder call checking 8 drafted tokens, per token checked.

A decoder call should cost well above what each token costs outside it, or the lossless
decoders (which save decoder calls, not the rest) cannot pay off: ``step / outside`` says
how far each size is from that.

    python benchmarks/speller_sizes.py [--sentences 40] [--out benchmarks/results/speller_sizes.json]

Weights are random: time does not depend on them (output lengths are fixed by
``min_new_tokens``/``max_new_tokens``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))
sys.path.insert(0, str(HERE))

SIZES = {  # name -> T5 config (v1.0 style: ReLU feed-forward, tied embeddings)
    "embedded (d128)": {"d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 3,
                        "num_decoder_layers": 2, "num_heads": 4},
    "d256 4+3": {"d_model": 256, "d_kv": 64, "d_ff": 1024, "num_layers": 4,
                 "num_decoder_layers": 3, "num_heads": 4},
    "d384 5+4": {"d_model": 384, "d_kv": 64, "d_ff": 1536, "num_layers": 5,
                 "num_decoder_layers": 4, "num_heads": 6},
    "d512 6+4": {"d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6,
                 "num_decoder_layers": 4, "num_heads": 8},
}  # fmt: skip
VOCAB = 8192
NEW_TOKENS = 24
WIDTH = 8


def tokenizer(folder: Path, sentences: list[str]) -> None:
    """The embedded speller's kind of tokenizer (``tools/train_speller.py``), on real prose."""
    from train_speller import bpe_tokenizer

    tok = bpe_tokenizer(sentences, VOCAB)
    tok.no_padding()
    tok.save(str(folder / "tokenizer.json"))


def build(folder: Path, config: dict[str, Any], vocab: int) -> Path:
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=vocab, dropout_rate=0.0, feed_forward_proj="relu", tie_word_embeddings=True,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **config))  # fmt: skip
    model.generation_config = GenerationConfig(decoder_start_token_id=0, pad_token_id=0,
                                               eos_token_id=1, max_new_tokens=48)  # fmt: skip
    model.save_pretrained(folder)
    return folder


def export(source: Path, out: Path, device: str) -> Path:
    import subprocess

    subprocess.run([sys.executable, "-m", "edgert", "export", str(source), "--device", device,
                    "--out", str(out)], check=True, capture_output=True)  # fmt: skip
    return out


class Timed:
    """A session wrapper adding up the time spent in ``run``."""

    def __init__(self, session: Any) -> None:
        self.session, self.seconds = session, 0.0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.session.run(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def measure(bundle: Path, sentences: list[str]) -> dict[str, float]:
    import edgert

    model = edgert.load(bundle)
    core = model.core
    encoder, decoder = Timed(core.encoder), Timed(core.decoder)
    core.encoder, core.decoder = encoder, decoder
    fixed, enc, step, verify = [], [], [], []
    options = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS}
    model.generate(sentences[0], **options)  # warm-up
    for sentence in sentences:
        encoder.seconds = decoder.seconds = 0.0
        started = time.perf_counter()
        model.generate(sentence, **options)
        total = time.perf_counter() - started
        fixed.append((total - encoder.seconds - decoder.seconds) * 1000)
        ids = model.encode_text(sentence)
        encoder.seconds = 0.0
        core.encode(ids)
        enc.append(encoder.seconds * 1000)
        core.step([0, *ids[:-1]])  # a cache as long as the sentence
        length = core.length
        decoder.seconds = 0.0
        core.step([5])
        step.append(decoder.seconds * 1000)
        core.rollback(length)
        decoder.seconds = 0.0
        core.step([5] * WIDTH)
        verify.append(decoder.seconds * 1000 / WIDTH)
    return {name: statistics.median(v) for name, v in
            (("fixed_ms", fixed), ("encoder_ms", enc), ("step_ms", step), ("verify_row_ms", verify))}  # fmt: skip


def main() -> None:
    import speller_corpus as corpus
    from _peers import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--out", default=str(HERE / "results" / "speller_sizes.json"))
    args = parser.parse_args()
    import random

    train, held = corpus.split()
    rng = random.Random(0)
    inputs = [corpus.corrupt(s, rng)[0] for s in held[: args.sentences]]
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer(work, train)
        vocab = json.loads((work / "tokenizer.json").read_text())["model"]["vocab"]
        for name, config in SIZES.items():
            source = build(work / f"src-{len(rows)}", config, len(vocab))
            (source / "tokenizer.json").write_bytes((work / "tokenizer.json").read_bytes())
            params = sum(p.numel() for p in __import__("transformers").T5ForConditionalGeneration
                         .from_pretrained(source).parameters())  # fmt: skip
            for device in ("auto", "cpu-generic"):
                bundle = export(source, work / f"b-{len(rows)}-{device}", device)
                size = sum(f.stat().st_size for f in bundle.iterdir())
                r = measure(bundle, inputs)
                precision = json.loads((bundle / "manifest.json").read_text())["precision"]
                rows[f"{name} {precision}"] = {"params": params, "bundle_mb": size / 1e6, **r}
                print(f"{name} {precision}: {r}", flush=True)
    print(f"\nspeller sizes, {len(inputs)} held-out sentences, {NEW_TOKENS} tokens each, "
          f"1 thread unless the profile says otherwise; {cpu_name()}")  # fmt: skip
    header = (f"{'model':<24} {'params':>8} {'MB':>6} {'outside/input':>13} {'/token':>7} "
              f"{'encoder':>8} {'step':>7} {'verify/row':>10} {'step/outside':>12}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        per_token = r["fixed_ms"] / NEW_TOKENS
        print(f"{name:<24} {r['params'] / 1e6:>7.1f}M {r['bundle_mb']:>6.1f} {r['fixed_ms']:>13.2f} "
              f"{per_token:>7.3f} {r['encoder_ms']:>8.2f} {r['step_ms']:>7.3f} "
              f"{r['verify_row_ms']:>10.3f} {r['step_ms'] / per_token:>12.1f}")  # fmt: skip
    print("milliseconds, medians; outside = a whole generate() minus its encoder and decoder calls")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"cpu": cpu_name(), "new_tokens": NEW_TOKENS, "rows": rows}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
