"""Train the embedded T5 spelling corrector and write its Hugging Face directory.

edgert ships a default generative model so that the seq2seq path (export, int8,
greedy and input-guided decoding, profiling) can be exercised end to end with
no download. It must be small enough to commit and to train on a laptop CPU,
and its task must be one an on-device user wants: fixing typos in a typed
sentence. Because the corrected sentence is mostly a copy of the input, the
task is also the natural showcase for decoding that drafts from the input.

Recipe (everything seeded; see ``--help``):

* data: ``data.py`` generates clean sentences from ``words.toml`` and damages
  1-3 words of each; a fresh batch is drawn every step (the sentence space is
  far larger than anything the model sees, so there is no epoch and no
  overfitting to individual sentences), 10% of inputs are left clean;
* tokenizer: byte-level BPE trained with ``tokenizers`` on clean generated
  text. Almost every vocabulary word becomes one token, so the *output* is
  about one token per word (short decodes), while a misspelt word falls apart into
  sub-word pieces the encoder has to reassemble. Special tokens follow T5:
  ``<pad>``=0, ``</s>``=1, ``<unk>``=2; the post-processor appends ``</s>``;
* model: ``T5ForConditionalGeneration`` v1.0 style (ReLU feed-forward, tied
  embeddings), sized to train in minutes on two cores and to stay well under
  20 MB of float32 weights; dropout is off because data is unlimited. In
  tuning runs d_model 128 got through T5's copy plateau (cross-attention has
  no positions, so the decoder must learn content-based alignment) sooner in
  wall time than d_model 256, and reached >90% exact match in ~11 minutes;
* optimisation: AdamW, linear warm-up then cosine decay, gradient clipping.
  The peak learning rate matters most: 1e-3 leaves the copy plateau after a
  few hundred steps, while 3e-3 and 1e-2 were still stuck after 1-2k steps.
  Training stops after ``--steps`` or ``--minutes``, whichever comes first; the
  schedule follows whichever is further along, so a slower machine still
  anneals properly (``metrics.json`` records which limit applied);
* evaluation: greedy decoding (``num_beams=1, do_sample=False``) on held-out
  sentences that are disjoint from training by construction, reporting exact
  match and character error rate before and after correction, plus how often
  an already-correct sentence is returned unchanged.

Run from a source checkout as ``python tools/train_speller.py`` (``--minutes``,
``--steps``, ``--out``).

``--draft`` trains the draft model that speculative decoding pairs with the
speller (``zoo:speller-draft``): the same recipe at ``DRAFT_CONFIG`` (two encoder
layers, one decoder layer), written to ``draft/``. It reuses the speller's
tokenizer file unchanged instead of training one, because a draft must give every
token the same id as its target; a retrained tokenizer would not. Its weights
start from the speller's own (embeddings, first encoder layers, first decoder
layer, final norms): from scratch a model this size spends its first thousands of
steps on T5's copy plateau, and a draft grown from its target agrees with it
more often, which is all a draft is for.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schedule import Budget, warmup_cosine

from edgert.exporters.zoo.speller import data
from edgert.plugins.decoding.lexicon import DICTIONARY

ZOO = Path(__file__).resolve().parents[1] / "exporters" / "zoo" / "speller"
DEFAULT_OUT = ZOO / "model"
DRAFT_OUT = ZOO / "draft"
SAMPLES_FILE = ZOO / "samples.txt"

SEED = 0  # model init and dropout-free training order
DATA_SEED = 1  # training pair stream
TOKENIZER_SEED = 3  # tokenizer training corpus
VALID_SEED = 4  # small held-out set, logged during training only
TEST_SEED = 2  # held-out set behind the reported metrics
SAMPLES_SEED = 5  # held-out demo sentences

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
VOCAB_SIZE = 1536
TOKENIZER_CORPUS = 30_000
MAX_INPUT_TOKENS = 48
MAX_NEW_TOKENS = 48
CLEAN_FRACTION = 0.1

MODEL_CONFIG = {
    "d_model": 128,
    "d_kv": 32,
    "d_ff": 512,
    "num_layers": 3,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 64,
    "dropout_rate": 0.0,
    "feed_forward_proj": "relu",
    "tie_word_embeddings": True,
}

# The draft for speculative decoding: every decoder call of a model this small is mostly
# fixed per-node cost, so the draft saves by having fewer layers (one decoder layer, the
# part called per token), not by being narrow; keeping the speller's width lets it start
# from the speller's weights.
DRAFT_CONFIG = {**MODEL_CONFIG, "num_layers": 2, "num_decoder_layers": 1}
DRAFT_STEPS = 2000  # from the speller's weights it needs far fewer steps than from scratch
DRAFT_MINUTES = 12.0  # an upper bound; on an idle 2-core machine the steps end first

STEPS = 6000
MINUTES = 14.5
BATCH_SIZE = 64
LR = 1e-3
MIN_LR_RATIO = 0.05
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0

TEST_SIZE = 600
CLEAN_TEST_SIZE = 200
VALID_SIZE = 64
EVAL_BATCH = 100

log = logging.getLogger("edgert.speller.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def train_tokenizer(vocab_size: int = VOCAB_SIZE, seed: int = TOKENIZER_SEED):
    """Byte-level BPE on clean generated text (see ``bpe_tokenizer``)."""
    corpus = data.sentences(TOKENIZER_CORPUS, seed)
    # Every word once more, so that rare words still get whole-word merges.
    corpus.append(" ".join(sorted(data.vocabulary())))
    return bpe_tokenizer(corpus, vocab_size)


def bpe_tokenizer(corpus: list[str], vocab_size: int):
    """Byte-level BPE trained on ``corpus``, with T5's special-token ids and ``</s>`` appended.

    Byte-level means any typo is encodable (no ``<unk>`` ever). A ``Prepend(" ")``
    normalizer makes the first word of a sentence the same token as anywhere
    else; it is used instead of ByteLevel's ``add_prefix_space`` because
    ``PreTrainedTokenizerFast(tokenizer_file=...)`` silently resets that flag
    unless the caller passes it again.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Prepend(" ")
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    # Drop the prepended space on decode, as T5's SentencePiece (Metaspace) decoder does.
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(t) != i:
            raise RuntimeError(f"special token {t} has id {tok.token_to_id(t)}, expected {i}")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    tok.enable_padding(pad_id=0, pad_token="<pad>")
    return tok


def speller_tokenizer():
    """The embedded speller's tokenizer, loaded as it was saved (for its draft model)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(DEFAULT_OUT / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="<pad>")
    return tok


def encode(tok, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(ids, attention_mask)`` int64 tensors, ``</s>`` included."""
    enc = tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
    return ids, mask


def make_batch(tok, batch: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    x, xm = encode(tok, [noisy for noisy, _ in batch])
    y, ym = encode(tok, [clean for _, clean in batch])
    labels = y.masked_fill(ym == 0, -100)  # padding is ignored by the loss
    return {"input_ids": x, "attention_mask": xm, "labels": labels}


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(hyps: list[str], refs: list[str]) -> float:
    """Character error rate: total edit distance over total reference characters."""
    return sum(levenshtein(h, r) for h, r in zip(hyps, refs, strict=True)) / sum(map(len, refs))


@torch.no_grad()
def correct(model, tok, texts: list[str], batch_size: int = EVAL_BATCH) -> list[str]:
    """Greedy-decode corrections, the way the runtime's default decoder does."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        ids, mask = encode(tok, texts[i : i + batch_size])
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            num_beams=1,
            do_sample=False,
            max_new_tokens=MAX_NEW_TOKENS,
        )
        out.extend(tok.decode_batch(gen.tolist(), skip_special_tokens=True))
    return out


def evaluate(model, tok, test: list[tuple[str, str]], clean: list[str]) -> dict:
    noisy = [n for n, _ in test]
    refs = [c for _, c in test]
    hyps = correct(model, tok, noisy)
    kept = correct(model, tok, clean)
    return {
        "exact_match": sum(h == r for h, r in zip(hyps, refs, strict=True)) / len(refs),
        "cer_before": cer(noisy, refs),
        "cer_after": cer(hyps, refs),
        "clean_unchanged": sum(k == c for k, c in zip(kept, clean, strict=True)) / len(clean),
        "predictions": hyps,
    }


def build_model(vocab_size: int, shape: dict | None = None):
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=vocab_size,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        is_encoder_decoder=True,
        **(shape or MODEL_CONFIG),
    )
    model = T5ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=0,
        eos_token_id=1,
        pad_token_id=0,
        max_new_tokens=MAX_NEW_TOKENS,
        num_beams=1,
        do_sample=False,
    )
    return model


def init_from(model, source: Path) -> int:
    """Copy every tensor of ``source``'s weights whose name and shape ``model`` shares."""
    from safetensors.torch import load_file

    weights = load_file(str(source / "model.safetensors"))
    state = model.state_dict()
    shared = {k: v for k, v in weights.items() if k in state and state[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    return len(shared)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--draft", action="store_true", help="train the smaller draft model (speller's tokenizer)"
    )
    parser.add_argument("--out", type=Path, help="model directory to write")
    parser.add_argument("--minutes", type=float, help="training-loop time budget")
    parser.add_argument("--steps", type=int, help="training steps (upper bound)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--test-size", type=int, default=TEST_SIZE)
    parser.add_argument(
        "--samples", default=str(SAMPLES_FILE), help="demo sentences file to write ('' to skip)"
    )
    args = parser.parse_args(argv)
    shape = DRAFT_CONFIG if args.draft else MODEL_CONFIG
    args.out = args.out or (DRAFT_OUT if args.draft else DEFAULT_OUT)
    if args.minutes is None:
        args.minutes = DRAFT_MINUTES if args.draft else MINUTES
    if args.steps is None:
        args.steps = DRAFT_STEPS if args.draft else STEPS
    if args.draft:
        args.samples = ""  # the demo sentences belong to the speller
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    import tokenizers
    import transformers
    from transformers import PreTrainedTokenizerFast, T5ForConditionalGeneration

    torch.set_num_threads(2)
    seed_everything(args.seed)
    t_start = time.perf_counter()

    tok = speller_tokenizer() if args.draft else train_tokenizer()
    vocab_size = tok.get_vocab_size()
    words = sorted(data.vocabulary())
    single = sum(len(tok.encode(w).ids) == 2 for w in words)  # word + </s>
    log.info("tokenizer: %d tokens, %d/%d words are one token", vocab_size, single, len(words))

    test = data.heldout_pairs(args.test_size, TEST_SEED)
    test_clean = data.sentences(CLEAN_TEST_SIZE, TEST_SEED + 100, split="heldout", unique=True)
    valid = data.heldout_pairs(VALID_SIZE, VALID_SEED)
    test_len = max(len(e.ids) for e in tok.encode_batch([n for n, _ in test]))
    if test_len > MAX_INPUT_TOKENS:
        raise RuntimeError(f"held-out input of {test_len} tokens exceeds {MAX_INPUT_TOKENS}")

    model = build_model(vocab_size, shape)
    if args.draft:
        copied = init_from(model, DEFAULT_OUT)
        log.info("draft: %d tensors initialised from the speller", copied)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model: %d parameters, config %s", n_params, shape)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "shared" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "shared" not in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": WEIGHT_DECAY},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.98),
    )

    stream = data.iter_pairs(DATA_SEED, "train", clean_fraction=CLEAN_FRACTION)
    budget = Budget(args.steps, args.minutes * 60)
    step, skipped, longest, smooth = 0, 0, 0, None
    while (progress := budget.progress(step)) is not None:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(progress, step, WARMUP_STEPS, args.lr, MIN_LR_RATIO)
        batch = []
        while len(batch) < args.batch_size:
            noisy, clean = next(stream)
            n_tok = len(tok.encode(noisy).ids)
            if n_tok > MAX_INPUT_TOKENS:
                skipped += 1
                continue
            longest = max(longest, n_tok)
            batch.append((noisy, clean))
        model.train()
        loss = model(**make_batch(tok, batch)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        step += 1
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % 500 == 0:
            hyps = correct(model, tok, [n for n, _ in valid])
            em = sum(h == c for h, (_, c) in zip(hyps, valid, strict=True)) / len(valid)
            log.info(
                "step %5d  %6.1fs  lr %.2e  loss %.4f  valid_em %.3f",
                step, budget.elapsed(), opt.param_groups[0]["lr"], smooth, em,
            )  # fmt: skip
    train_time, stopped_by = budget.elapsed(), budget.stopped_by
    log.info("trained %d steps in %.1fs (stopped by %s)", step, train_time, stopped_by)

    t_eval = time.perf_counter()
    metrics = evaluate(model, tok, test, test_clean)
    eval_time = time.perf_counter() - t_eval
    predictions = metrics.pop("predictions")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_INPUT_TOKENS,
        model_input_names=["input_ids", "attention_mask"],  # T5 takes no token_type_ids
    )
    fast.save_pretrained(out)
    (out / DICTIONARY).write_text("\n".join(data.dictionary()) + "\n", encoding="utf-8")
    if args.draft:  # byte for byte the speller's: the ids must not drift
        shutil.copyfile(DEFAULT_OUT / "tokenizer.json", out / "tokenizer.json")
        for name in ("validation.txt", "calibration.txt"):  # same task, same export checks
            shutil.copyfile(DEFAULT_OUT / name, out / name)

    # Reload from disk, the way a user would, and check the predictions agree.
    re_tok = PreTrainedTokenizerFast(
        tokenizer_file=str(out / "tokenizer.json"),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    re_model = T5ForConditionalGeneration.from_pretrained(out)
    k = min(100, len(test))
    re_hyps = correct(re_model, re_tok.backend_tokenizer, [n for n, _ in test[:k]])
    if re_hyps != predictions[:k]:
        raise RuntimeError("reloaded model disagrees with the trained one")

    if args.samples:
        demo = [n for n, _ in data.heldout_pairs(10, SAMPLES_SEED)]
        Path(args.samples).write_text("\n".join(demo) + "\n", encoding="utf-8")

    errors = [
        {"input": n, "output": h, "expected": c}
        for (n, c), h in zip(test, predictions, strict=True)
        if h != c
    ]
    result = {
        "model": "speller-t5-draft" if args.draft else "speller-t5",
        "task": "English typo correction (1-3 non-word typos per sentence: swap, drop, double, QWERTY neighbour)",
        "heldout_exact_match": round(metrics["exact_match"], 4),
        "heldout_cer_before": round(metrics["cer_before"], 4),
        "heldout_cer_after": round(metrics["cer_after"], 4),
        "heldout_clean_unchanged": round(metrics["clean_unchanged"], 4),
        "heldout_pairs": len(test),
        "heldout_clean_sentences": len(test_clean),
        "heldout_split": f"crc32(clean sentence) % {data.HELDOUT_MODULUS} == 0, never trained on",
        "decoding": f"greedy, num_beams=1, do_sample=False, max_new_tokens={MAX_NEW_TOKENS}",
        "params": n_params,
        "architecture": "T5ForConditionalGeneration (v1.0: relu FF, tied embeddings)",
        "config": shape,
        "tokenizer": f"byte-level BPE, {vocab_size} tokens, <pad>=0 </s>=1 <unk>=2, '$A </s>'",
        "vocab_size": vocab_size,
        "words": len(words),
        "single_token_words": single,
        "max_input_tokens": MAX_INPUT_TOKENS,
        "longest_train_input_tokens": longest,
        "skipped_long_inputs": skipped,
        "steps": step,
        "stopped_by": stopped_by,
        "train_examples": step * args.batch_size,
        "batch_size": args.batch_size,
        "optimizer": f"AdamW(lr={args.lr}, betas=(0.9, 0.98), wd={WEIGHT_DECAY}), "
        f"warmup {WARMUP_STEPS} + cosine to {MIN_LR_RATIO}x, clip {GRAD_CLIP}",
        "clean_fraction": CLEAN_FRACTION,
        "budget_steps": args.steps,
        "budget_minutes": args.minutes,
        "train_time_s": round(train_time, 1),
        "eval_time_s": round(eval_time, 1),
        "total_time_s": round(time.perf_counter() - t_start, 1),
        "threads": torch.get_num_threads(),
        "seeds": {
            "init": args.seed,
            "train_data": DATA_SEED,
            "tokenizer": TOKENIZER_SEED,
            "valid": VALID_SEED,
            "test": TEST_SEED,
            "samples": SAMPLES_SEED,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "example_errors": errors[:10],
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log.info(
        "held-out exact match %.4f (%d pairs), CER %.4f -> %.4f, clean kept %.4f, total %.1fs",
        metrics["exact_match"], len(test), metrics["cer_before"], metrics["cer_after"],
        metrics["clean_unchanged"], result["total_time_s"],
    )  # fmt: skip
    log.info("wrote %s", out)
    return result


if __name__ == "__main__":
    main()
