"""Train the embedded speech-commands model (a tiny Whisper) and write its folder.

edgert ships a default speech model so that the speech family (export, transcribe,
profiling, the app's audio page) can be exercised end to end with no download. It must
be small enough to commit, trainable from the repository alone on a laptop CPU, and do a
task an on-device user wants: spoken commands and numbers ("turn on the kitchen light",
"set a timer for five minutes", "call three seven two", "forty two").

Recipe (everything seeded; see ``--help``):

* text: the command grammar of ``speech_commands.py`` (about a hundred words, numbers
  0..99 in words);
* audio: espeak-ng, speaking each command with a random voice of the training split
  (accent + variant), speed (``-s`` 120..210), pitch (``-p`` 20..80), amplitude and word
  gap, resampled 22.05 -> 16 kHz with soxr, placed at a random offset of a 4 s window,
  with white, pink or brown noise at 10..40 dB SNR (15% clean). Held-out voices (two
  accents and four variants that training never uses) make the test set;
* features: the project's numpy log-mel front-end with the feature extractor's filters,
  computed once per clip by two synthesis processes, kept as float16;
* tokenizer: byte-level BPE trained on commands, every grammar word one token, then
  Whisper's special tokens in Whisper's order (English-only: no language tokens);
* model: ``WhisperForConditionalGeneration`` with a 4 s window (400 frames,
  ``max_source_positions`` 200), sized to train in under half an hour on two cores;
* optimisation: teacher forcing on ``[sot, notimestamps] + text -> text + eot`` (what
  ``generate()`` prompts and expects), AdamW, warm-up then cosine decay, SpecAugment-like
  time and frequency masks. Training stops after ``--steps`` or when the ``--minutes``
  budget of the whole run is spent, whichever comes first; the schedule follows
  whichever is further along, so a slower machine still anneals (``training.json``
  records which limit applied);
* evaluation: WER of transformers' ``generate(input_features)`` (greedy, the folder's
  generation config) on clips of the held-out voices, text lower-cased and stripped of
  punctuation. A few of them ship as ``heldout.npz`` (int16 16 kHz audio and texts).

Run from a source checkout as ``python tools/train_commands.py --out exporters/zoo/commands``;
``--evaluate`` re-measures a written folder (and, with ``--bundle``, checks that an
exported edgert bundle transcribes the shipped clips as ``generate`` does).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speech_commands as sc
from schedule import Budget, warmup_cosine

from edgert.plugins.families.speech.metrics import word_error_rate as wer

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "exporters" / "zoo" / "commands"

SEED = 0
TEXT_VOCAB = 512  # bytes plus merges: every grammar word becomes one token
MINUTES = 29.0  # the whole run: synthesis, training, evaluation
EVAL_RESERVE_S = 90  # kept from training for the final evaluation and saving
TRAIN_SIZE = 8_000
STEPS = 6000
BATCH_SIZE = 32
LR = 3e-3
MIN_LR_RATIO = 0.05
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0
LABEL_SMOOTHING = 0.0
CTC_WEIGHT = 1.0  # an auxiliary CTC head on the encoder, dropped when the model is saved
WORKERS = 2

TEST_SIZE = 240  # held-out clips behind the reported WER
SHIPPED_SIZE = 32  # the first of them, saved as heldout.npz
VALID_SIZE = 64  # held-out clips logged during training
TRAIN_SNR = (10.0, 40.0)
TRAIN_CLEAN = 0.15
TEST_SNR = (10.0, 30.0)
MAX_LENGTH = 48  # generate's max_length: prompt + the longest command with room to spare
MAX_TARGET_POSITIONS = 64

MODEL_CONFIG = {
    "d_model": 112,
    "encoder_layers": 4,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 448,
    "decoder_ffn_dim": 448,
    "dropout": 0.0,
}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def special_tokens() -> list[str]:
    """Whisper's specials in Whisper's order (English-only: no languages), timestamps last."""
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    return ["<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>", *stamps]  # fmt: skip


def train_tokenizer(seed: int):
    """Byte-level BPE on commands (each with Whisper's leading space), then the specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TEXT_VOCAB, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tokenizer.train_from_iterator([" " + t for t in sc.corpus(20_000, seed)], trainer)
    tokenizer.add_special_tokens(special_tokens())
    for word in sc.vocabulary():
        ids = tokenizer.encode(" " + word).ids
        if tokenizer.decode(ids) != " " + word or any(i >= TEXT_VOCAB for i in ids):
            raise RuntimeError(f"the tokenizer does not encode {word!r} as text")
    return tokenizer


def text_ids(tokenizer, text: str) -> list[int]:
    """The tokens of a transcript as Whisper writes it: after a leading space."""
    return tokenizer.encode(" " + text).ids


def build_model(tokenizer):
    """A seeded ``WhisperForConditionalGeneration`` with Whisper's generation config."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    ids = tokenizer.token_to_id
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    space = tokenizer.encode(" ").ids[0]
    suppress = [ids(t) for t in ("<|translate|>", "<|transcribe|>", "<|startoflm|>",
                                 "<|startofprev|>", "<|nospeech|>")]  # fmt: skip
    config = WhisperConfig(
        vocab_size=tokenizer.get_vocab_size(), num_mel_bins=80,
        max_source_positions=sc.CHUNK_SECONDS * sc.RATE // 160 // 2,
        max_target_positions=MAX_TARGET_POSITIONS, pad_token_id=eot, bos_token_id=eot,
        eos_token_id=eot, decoder_start_token_id=sot, begin_suppress_tokens=[space, eot],
        suppress_tokens=suppress, **MODEL_CONFIG,
    )  # fmt: skip
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        max_length=MAX_LENGTH, begin_suppress_tokens=[space, eot], suppress_tokens=suppress,
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50, is_multilingual=False,
        forced_decoder_ids=[[1, ids("<|notimestamps|>")]],
    )  # fmt: skip
    return model


# --- data ---------------------------------------------------------------------------------
def synthesize(count: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts and float16 features ``[count, 80, 400]`` of the training clips, made by
    ``WORKERS`` processes (each utterance is seeded by its index, so order is fixed)."""
    frames = sc.CHUNK_SECONDS * sc.RATE // 160
    feats = np.empty((count, 80, frames), np.float16)
    texts: list[str] = []
    jobs = [(seed, i, TRAIN_SNR, TRAIN_CLEAN) for i in range(count)]
    # fork: the workers need no fresh interpreter, and torch has started no threads yet.
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        for i, (text, f) in enumerate(pool.imap(sc.train_example, jobs, chunksize=64)):
            texts.append(text)
            feats[i] = f
    return texts, feats


def heldout(count: int, seed: int) -> list[sc.Utterance]:
    """Clips of the held-out voices, at 10..30 dB SNR (20% clean)."""
    return [sc.utterance(seed, "heldout", i, snr=TEST_SNR, clean=0.2) for i in range(count)]


def batch_tokens(seqs: list[list[int]], sot: int, no_ts: int, eot: int):
    """Teacher forcing: decoder input ``[sot, notimestamps] + text`` and labels
    ``text + eot`` at the same positions (the prompt's own position predicts nothing)."""
    width = max(len(s) for s in seqs) + 2
    inputs = torch.full((len(seqs), width), eot, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for row, s in enumerate(seqs):
        inputs[row, : len(s) + 2] = torch.tensor([sot, no_ts, *s])
        labels[row, 1 : len(s) + 2] = torch.tensor([*s, eot])
    return inputs, labels


def spec_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One frequency mask (up to 8 mels) and one time mask (up to 20 frames) per clip,
    filled with the clip's mean: robustness to missing bands and dropouts. Kept light: in
    half an hour the model underfits (its WER is the same on training and held-out
    voices), so heavier masking only slows it down."""
    b, mels, frames = x.shape
    fill = x.mean(dim=(1, 2), keepdim=True)
    keep = torch.ones_like(x, dtype=torch.bool)
    for size, width, axis in ((mels, 8, 1), (frames, 20, 2)):
        w = torch.randint(0, width + 1, (b,), generator=gen)
        start = (torch.rand(b, generator=gen) * (size - w)).long()
        pos = torch.arange(size)
        mask = (pos[None] >= start[:, None]) & (pos[None] < (start + w)[:, None])
        keep &= ~(mask[:, :, None] if axis == 1 else mask[:, None, :])
    return torch.where(keep, x, fill)


# --- evaluation ---------------------------------------------------------------------------
@torch.no_grad()
def transcribe(model, tokenizer, audios: list[np.ndarray], batch: int = 32) -> list[str]:
    """transformers' ``generate(input_features)`` with the folder's generation config
    (greedy), on features of the project's front-end."""
    model.eval()
    filters = sc.mel_filters()
    out: list[str] = []
    for i in range(0, len(audios), batch):
        feats = np.stack([sc.features(a, filters) for a in audios[i : i + batch]])
        tokens = model.generate(input_features=torch.from_numpy(feats))
        out.extend(tokenizer.decode_batch(tokens.tolist(), skip_special_tokens=True))
    return out


def shipped_set(clips: list[sc.Utterance]) -> dict[str, np.ndarray]:
    """``heldout.npz``'s arrays: int16 clips concatenated (``offsets`` cut them), texts and
    voices as JSON strings."""
    pcm = [np.clip(np.round(c.audio * 32767), -32768, 32767).astype(np.int16) for c in clips]
    return {
        "audio": np.concatenate(pcm),
        "offsets": np.cumsum([0, *(p.size for p in pcm)]).astype(np.int64),
        "sampling_rate": np.int64(sc.RATE),
        "texts": np.array(json.dumps([c.text for c in clips])),
        "voices": np.array(json.dumps([c.voice for c in clips])),
    }


def load_shipped(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The float32 clips and reference texts of a ``heldout.npz``."""
    with np.load(path) as data:
        audio, offsets = data["audio"], data["offsets"]
        texts = json.loads(str(data["texts"]))
    clips = [audio[a:b].astype(np.float32) / 32768.0 for a, b in itertools.pairwise(offsets)]
    return clips, texts


def check_bundle(bundle: Path, model, tokenizer, folder: Path) -> dict:
    """Whether an exported edgert bundle transcribes the shipped clips exactly as
    transformers' ``generate`` does."""
    import edgert

    clips, _ = load_shipped(folder / "heldout.npz")
    reference = transcribe(model, tokenizer, clips)
    runtime = edgert.load(str(bundle))
    got = [runtime.transcribe(c).text for c in clips]
    same = sum(a == b for a, b in zip(got, reference, strict=True))
    for a, b in zip(got, reference, strict=True):
        if a != b:
            print(f"  differs: edgert {a!r} vs generate {b!r}")
    return {"clips": len(clips), "same_text": same}


def evaluate(folder: Path, seed: int, bundle: Path | None) -> dict:
    """Held-out WER of a written folder (re-synthesized test clips and the shipped ones)."""
    from tokenizers import Tokenizer
    from transformers import WhisperForConditionalGeneration

    torch.set_num_threads(2)
    model = WhisperForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    test = heldout(TEST_SIZE, seed)
    hyps = transcribe(model, tokenizer, [c.audio for c in test])
    clips, texts = load_shipped(folder / "heldout.npz")
    shipped = transcribe(model, tokenizer, clips)
    result = {"heldout_wer": wer(hyps, [c.text for c in test]),
              "shipped_wer": wer(shipped, texts)}  # fmt: skip
    for h, c in list(zip(hyps, test, strict=True))[:12]:
        print(f"  {c.voice:22s} {c.text!r:44s} -> {h.strip()!r}")
    if bundle is not None:
        result["bundle"] = check_bundle(bundle, model, tokenizer, folder)
    return result


# --- training -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model folder to write")
    parser.add_argument("--minutes", type=float, default=MINUTES,
                        help="wall-clock budget of the whole run (synthesis included)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps (upper bound)")
    parser.add_argument("--train-size", type=int, default=TRAIN_SIZE, help="training clips")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--evaluate", action="store_true",
                        help="measure the held-out WER of the folder at --out, train nothing")  # fmt: skip
    parser.add_argument("--bundle", type=Path,
                        help="with --evaluate: an edgert bundle exported from --out to compare")  # fmt: skip
    args = parser.parse_args(argv)
    if args.evaluate:
        result = evaluate(args.out, args.seed, args.bundle)
        print(json.dumps(result, indent=2))
        return result

    t_start = time.perf_counter()
    deadline = t_start + args.minutes * 60 - EVAL_RESERVE_S
    texts, feats = synthesize(args.train_size, args.seed)
    synth_time = time.perf_counter() - t_start
    print(f"synthesized {len(texts)} clips in {synth_time:.0f}s")

    import tokenizers
    import transformers
    from transformers import WhisperFeatureExtractor

    torch.set_num_threads(2)
    seed_everything(args.seed)
    tokenizer = train_tokenizer(args.seed)
    ids = tokenizer.token_to_id
    sot, no_ts, eot = ids("<|startoftranscript|>"), ids("<|notimestamps|>"), ids("<|endoftext|>")
    seqs = [text_ids(tokenizer, t) for t in texts]
    valid = heldout(VALID_SIZE, args.seed + 1000)
    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters, tokenizer {tokenizer.get_vocab_size()} tokens, "
          f"longest command {max(map(len, seqs))} tokens")  # fmt: skip

    # CTC over the text tokens (blank last) on the encoder's output: a direct gradient to
    # the encoder, which attention alone gives too slowly for a from-scratch model to find
    # the alignment in minutes. Only the Whisper model is saved.
    ctc_head = torch.nn.Linear(model.config.d_model, TEXT_VOCAB + 1)
    named = [*model.named_parameters(), *(("ctc." + n, p) for n, p in ctc_head.named_parameters())]
    decay = [p for n, p in named if p.dim() >= 2 and "embed" not in n]
    rest = [p for n, p in named if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": rest, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.98))  # fmt: skip
    gen = torch.Generator().manual_seed(args.seed)
    features = torch.from_numpy(feats)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=LABEL_SMOOTHING)
    budget = Budget(args.steps, max(deadline - time.perf_counter(), 1.0))
    step, smooth, order = 0, None, torch.empty(0, dtype=torch.long)
    while (progress := budget.progress(step)) is not None:
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(progress, step, WARMUP_STEPS, LR, MIN_LR_RATIO)
        if order.numel() < BATCH_SIZE:
            order = torch.cat([order, torch.randperm(len(seqs), generator=gen)])
        idx, order = order[:BATCH_SIZE], order[BATCH_SIZE:]
        x = spec_augment(features[idx].float(), gen)
        inputs, labels = batch_tokens([seqs[i] for i in idx.tolist()], sot, no_ts, eot)
        model.train()
        out = model(input_features=x, decoder_input_ids=inputs)
        logits = out.logits
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        targets = [seqs[i] for i in idx.tolist()]
        frames = ctc_head(out.encoder_last_hidden_state).log_softmax(-1).transpose(0, 1)
        ctc = torch.nn.functional.ctc_loss(
            frames, torch.tensor([t for seq in targets for t in seq]),
            torch.full((len(targets),), frames.shape[0], dtype=torch.long),
            torch.tensor([len(seq) for seq in targets]), blank=TEXT_VOCAB, zero_infinity=True,
        )  # fmt: skip
        loss = loss + CTC_WEIGHT * ctc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], GRAD_CLIP)
        opt.step()
        step += 1
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if step % 200 == 0 or step == args.steps:
            hyps = transcribe(model, tokenizer, [c.audio for c in valid])
            print(f"step {step:5d}  {budget.elapsed():6.0f}s  "
                  f"lr {opt.param_groups[0]['lr']:.2e}  loss {smooth:.3f}  "
                  f"valid_wer {wer(hyps, [c.text for c in valid]):.3f}", flush=True)  # fmt: skip
    train_time, stopped_by = budget.elapsed(), budget.stopped_by
    print(f"trained {step} steps in {train_time:.0f}s (stopped by {stopped_by})")

    test = heldout(TEST_SIZE, args.seed)
    hyps = transcribe(model, tokenizer, [c.audio for c in test])
    test_wer = wer(hyps, [c.text for c in test])
    shipped = test[:SHIPPED_SIZE]
    shipped_wer = wer(hyps[:SHIPPED_SIZE], [c.text for c in shipped])
    print(f"held-out WER {test_wer:.4f} ({TEST_SIZE} clips), shipped clips {shipped_wer:.4f}")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save(str(out / "tokenizer.json"))
    WhisperFeatureExtractor(feature_size=80, chunk_length=sc.CHUNK_SECONDS).save_pretrained(out)
    np.savez_compressed(out / "heldout.npz", **shipped_set(shipped))
    words = sc.vocabulary()
    recipe = {
        "model": "commands-whisper",
        "task": "English spoken commands and numbers (0..99 in words)",
        "command": "python tools/train_commands.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "architecture": "WhisperForConditionalGeneration",
        "config": MODEL_CONFIG,
        "params": n_params,
        "window_seconds": sc.CHUNK_SECONDS,
        "tokenizer": f"byte-level BPE, {TEXT_VOCAB} text tokens + Whisper's specials",
        "vocab_size": tokenizer.get_vocab_size(),
        "words": len(words),
        "voices": {"train": sc.voices("train"), "heldout": sc.voices("heldout")},
        "synthesis": "espeak-ng -s 120..210 -p 20..80 -a 60..180 -g 0..3, soxr to 16 kHz, "
        f"white/pink/brown noise {TRAIN_SNR[0]:g}..{TRAIN_SNR[1]:g} dB SNR ({TRAIN_CLEAN:.0%} clean), "
        "random offset in the window",
        "train_clips": len(texts),
        "heldout_clips": TEST_SIZE,
        "heldout_snr_db": list(TEST_SNR),
        "shipped_clips": len(shipped),
        "steps": step,
        "budget_steps": args.steps,
        "budget_minutes": args.minutes,
        "stopped_by": stopped_by,
        "batch_size": BATCH_SIZE,
        "optimizer": f"AdamW(lr={LR}, betas=(0.9, 0.98), wd={WEIGHT_DECAY}), warmup "
        f"{WARMUP_STEPS} + cosine to {MIN_LR_RATIO}x, clip {GRAD_CLIP}, label smoothing "
        f"{LABEL_SMOOTHING}, SpecAugment 1x8 mels + 1x20 frames, auxiliary encoder CTC "
        f"(weight {CTC_WEIGHT}, not shipped)",
        "final_loss": round(smooth or 0.0, 4),
        "heldout_wer": round(test_wer, 4),
        "shipped_wer": round(shipped_wer, 4),
        "decoding": "transformers generate(input_features), greedy, generation_config.json",
        "synthesis_time_s": round(synth_time, 1),
        "train_time_s": round(train_time, 1),
        "total_time_s": round(time.perf_counter() - t_start, 1),
        "threads": 2,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__},
    }  # fmt: skip
    (out / "training.json").write_text(json.dumps(recipe, indent=2) + "\n")
    print(f"wrote {out} in {recipe['total_time_s']:.0f}s")
    return recipe


if __name__ == "__main__":
    main()
