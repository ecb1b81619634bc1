"""Decoder-decoder vs feeding the whole context to the main decoder: first-token time and
CPU time as the context grows.

The model has realistic small shapes (random weights; speed does not depend on them): a
2-layer, 256-wide context encoder and an 8-layer, 512-wide main decoder with
grouped-query attention, 32 memory slots, a 4,000-token vocabulary. For each context
length and precision, one interleaved run measures per round:

- ``dolphin``: encode the context (cache cleared) into 32 memory rows, then the main
  decoder's short prompt (memory + question) up to the first token;
- ``full``: the same main decoder graph fed the whole context plus the question as its
  prompt (memory marker left empty): what a plain causal LM has to do;
- ``cache hit``: a new question about a context already encoded.

Time to first token is wall time around ``generate(max_new_tokens=1)``; CPU seconds are
process CPU time over the same span (all ONNX Runtime threads are in this process), an
energy proxy.

    python benchmarks/dolphin.py [--lengths 512 2048 8192] [--rounds 3] [--out ...]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import edgert
from edgert.catalog import get_catalog

SLOTS = 32
VOCAB = 4000
WORDS = 3000


def build_source(folder: Path, max_context: int) -> Path:
    """A Dolphin-layout checkpoint with the shapes above and a trained BPE tokenizer."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import torch
    from helpers.dolphin_models import qwen2_config
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2ForCausalLM, Qwen2Model

    if (folder / "config.json").exists():
        return folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, int(rng.integers(2, 9)))) for _ in range(WORDS)]
    corpus = [" ".join(rng.choice(words, 30)) for _ in range(3000)]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - SLOTS, special_tokens=["<|endoftext|>"], show_progress=False
    )
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.add_special_tokens([f"[memory_{i}]" for i in range(SLOTS)])
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "corpus.txt").write_text("\n".join(corpus), encoding="utf-8")
    vocab = tokenizer.get_vocab_size()
    torch.manual_seed(0)
    positions = max_context + 256
    encoder_cfg = qwen2_config(256, 4, 2, 2, max_position_embeddings=positions)
    main_cfg = qwen2_config(512, 8, 4, 8, max_position_embeddings=positions)
    for cfg, inner in ((encoder_cfg, 704), (main_cfg, 1408)):
        cfg.vocab_size, cfg.intermediate_size, cfg.initializer_range = vocab, inner, 0.02
    encoder, main = Qwen2Model(encoder_cfg), Qwen2ForCausalLM(main_cfg)
    state = dict(main.state_dict())
    state.update({f"model.context_encoder.encoder.model.{k}": v
                  for k, v in encoder.state_dict().items()})  # fmt: skip
    projection = torch.nn.Linear(256, 512)
    prefix = "model.context_encoder.projector.context_projection."
    state[prefix + "weight"], state[prefix + "bias"] = projection.weight, projection.bias
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()},
              str(folder / "model.safetensors"))  # fmt: skip
    config = {**main_cfg.to_dict(), "model_type": "dolphin", "memory_size": SLOTS,
              "encoder_config": encoder_cfg.to_dict()}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def export(source: Path, out: Path, device: str) -> Path:
    from edgert.exporters.dolphin.export import DolphinExport, export_dolphin

    if not out.exists():
        profile, _ = edgert.resolve_device(device)
        export_dolphin(DolphinExport(source=str(source), out=out), profile, get_catalog())
    return out


def context_of(model: Any, corpus: list[str], tokens: int) -> str:
    """Corpus text cut to exactly ``tokens`` context tokens."""
    text = " ".join(corpus)
    while len(model.context_tokenizer.encode(text).ids) < tokens:
        text = f"{text} {text}"
    ids = model.context_tokenizer.encode(text).ids[:tokens]
    return model.context_tokenizer.decode(ids)


def timed(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, time.process_time() - cpu


def measure(model: Any, context: str, question: str, rounds: int) -> dict[str, Any]:
    """Interleaved rounds of the three ways to the first token."""
    full_prompt = [*model.tokenizer.encode(context).ids, *model.encode_text(question)]
    empty = np.zeros((0, model.core.layout.d_model), np.float32)

    def dolphin() -> None:
        model.memory_cache.clear()
        model.generate(question, context=context, max_new_tokens=1)

    def full() -> None:
        model.core.use_memory(empty)
        model.core.start(full_prompt)

    def hit() -> None:
        model.generate(question + " again", context=context, max_new_tokens=1)

    samples: dict[str, list[tuple[float, float]]] = {"dolphin": [], "full": [], "cache hit": []}
    order = list(samples)
    dolphin(), full(), hit()  # warm-up: sessions allocate their arenas on first use
    for index in range(rounds):
        for name in order[index % 3 :] + order[: index % 3]:
            samples[name].append(timed({"dolphin": dolphin, "full": full, "cache hit": hit}[name]))
    return {
        name: {
            "ttft_ms": float(np.median([s[0] for s in rows])),
            "cpu_s": float(np.median([s[1] for s in rows])),
            "prompt_tokens": len(full_prompt) if name == "full" else None,
        }
        for name, rows in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "edgert-bench-dolphin"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dolphin.json"))
    args = parser.parse_args()
    longest = max(args.lengths)
    source = build_source(args.work / f"source-{longest}", longest)
    corpus = (source / "corpus.txt").read_text(encoding="utf-8").splitlines()
    devices = {"fp32": "cpu-generic", "int8": "x86-avx512-vnni-int8"}
    rows = []
    for precision in args.precisions:
        bundle = export(source, args.work / f"{precision}-{longest}", devices[precision])
        for length in args.lengths:
            # A fresh model per length: ONNX Runtime's arenas keep the largest shapes seen,
            # and 8,192-token attention would otherwise hold gigabytes for the shorter runs.
            model = edgert.load(bundle)
            context = context_of(model, corpus, length)
            result = measure(model, context, "which word comes first", args.rounds)
            row = {"precision": precision, "context_tokens": length, **result}
            row["speedup_vs_full"] = result["full"]["ttft_ms"] / result["dolphin"]["ttft_ms"]
            row["cache_hit_speedup_vs_full"] = (
                result["full"]["ttft_ms"] / result["cache hit"]["ttft_ms"]
            )
            row["cpu_ratio_full_vs_dolphin"] = result["full"]["cpu_s"] / result["dolphin"]["cpu_s"]
            rows.append(row)
            print_row(row)
            del model
            gc.collect()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"host": host(), "rounds": args.rounds, "slots": SLOTS, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def print_row(row: dict[str, Any]) -> None:
    d, f, h = row["dolphin"], row["full"], row["cache hit"]
    print(
        f"{row['precision']:>5} {row['context_tokens']:>6} tokens | first token: dolphin "
        f"{d['ttft_ms']:8.1f} ms, full context {f['ttft_ms']:9.1f} ms, cache hit "
        f"{h['ttft_ms']:6.1f} ms | full/dolphin {row['speedup_vs_full']:5.1f}x, full/hit "
        f"{row['cache_hit_speedup_vs_full']:6.1f}x | CPU s dolphin {d['cpu_s']:.3f}, full "
        f"{f['cpu_s']:.3f} ({row['cpu_ratio_full_vs_dolphin']:.1f}x)",
        flush=True,
    )


def host() -> dict[str, Any]:
    import os
    import platform

    from edgert.host import this_host

    return {
        "cpu": this_host().cpu_name,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main()
