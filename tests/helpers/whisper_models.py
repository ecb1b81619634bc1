"""Tiny Whisper checkpoints saved with transformers' own code (multilingual with
timestamps, and English-only), with a byte-level BPE tokenizer trained here that carries
Whisper's special tokens in Whisper's order: text, ``<|endoftext|>``,
``<|startoftranscript|>``, languages, tasks, ``<|startoflm|>``, ``<|startofprev|>``,
``<|nospeech|>``, ``<|notimestamps|>``, then the 1501 timestamps ``<|0.00|>``..``<|30.00|>``."""

from __future__ import annotations

from pathlib import Path

from helpers.seq2seq_models import CORPUS

LANGUAGES = ("en", "de", "fr")
TEXT_VOCAB = 211  # odd, and more than the byte alphabet


def special_tokens(multilingual: bool) -> list[str]:
    languages = [f"<|{code}|>" for code in LANGUAGES] if multilingual else []
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    return ["<|endoftext|>", "<|startoftranscript|>", *languages, "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
            "<|notimestamps|>", *stamps]  # fmt: skip


def train_tokenizer(folder: Path, multilingual: bool):
    """Byte-level BPE on the local corpus, then Whisper's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TEXT_VOCAB, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.add_special_tokens(special_tokens(multilingual))
    tokenizer.save(str(folder / "tokenizer.json"))
    return tokenizer


def whisper_folder(folder: Path, *, multilingual: bool = True, seed: int = 0,
                   d_model: int = 36, layers: int = 2, whisper_config: bool = True) -> Path:  # fmt: skip
    """Save a seeded random ``WhisperForConditionalGeneration`` with its feature
    extractor, generation config and tokenizer into ``folder``, as transformers does.
    ``whisper_config=False`` keeps the generation config transformers derives from the
    model config alone (no languages, tasks or timestamp ids; ``max_length`` 20)."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(folder, multilingual)
    ids = tokenizer.token_to_id
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    no_timestamps = ids("<|notimestamps|>")
    space = tokenizer.encode(" ").ids[0]
    suppress = [ids("<|startoflm|>"), ids("<|nospeech|>"), 5, 9]
    config = WhisperConfig(
        vocab_size=tokenizer.get_vocab_size(), d_model=d_model, encoder_layers=layers,
        decoder_layers=layers, encoder_attention_heads=3, decoder_attention_heads=3,
        encoder_ffn_dim=2 * d_model + 1, decoder_ffn_dim=2 * d_model + 1, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=448, pad_token_id=eot,
        bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        begin_suppress_tokens=[space, eot], suppress_tokens=suppress,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    gen = {
        "decoder_start_token_id": sot, "eos_token_id": eot, "pad_token_id": eot,
        "bos_token_id": eot, "max_length": 448, "begin_suppress_tokens": [space, eot],
        "suppress_tokens": suppress,
        "no_timestamps_token_id": no_timestamps, "prev_sot_token_id": ids("<|startofprev|>"),
        "max_initial_timestamp_index": 50, "is_multilingual": multilingual,
    }  # fmt: skip
    if not whisper_config:
        model.save_pretrained(folder)
        WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
        return folder
    if multilingual:
        gen["lang_to_id"] = {f"<|{c}|>": ids(f"<|{c}|>") for c in LANGUAGES}
        gen["task_to_id"] = {t: ids(f"<|{t}|>") for t in ("transcribe", "translate")}
        gen["forced_decoder_ids"] = [[1, None], [2, ids("<|transcribe|>")]]
    else:
        gen["forced_decoder_ids"] = [[1, no_timestamps]]
    model.generation_config = GenerationConfig(**gen)
    model.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder
