"""Tiny T5, T5 v1.1, BART and Marian models with odd sizes and tokenizers trained here."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a small model runs on the edge of the network",
    "speculative decoding verifies drafted tokens in one pass",
    "encoder decoder models copy spans of their input",
    "the phone has a neural processing unit and a small battery",
    "please correct the spelling of this short sentence",
] * 4

SPECIALS = {
    "t5": (["<pad>", "</s>", "<unk>"], "$A </s>"),
    "t5v11": (["<pad>", "</s>", "<unk>"], "$A </s>"),
    "bart": (["<s>", "<pad>", "</s>", "<unk>"], "<s> $A </s>"),
    "marian": (["</s>", "<unk>", "<pad>"], "$A </s>"),
}
VOCAB = 99
KINDS = ("t5", "t5v11", "bart", "marian")


def train_tokenizer(kind: str, folder: Path) -> None:
    """A BPE tokenizer with ``VOCAB`` entries and the model's special tokens first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials, template = SPECIALS[kind]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokens = [t for t in template.split() if t != "$A"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(t, tokenizer.token_to_id(t)) for t in tokens]
    )
    tokenizer.save(str(folder / "tokenizer.json"))


# Wide enough that int8 profiles quantize the decoder's MatMuls (min_weight_elements).
WIDE = {"d_model": 256, "d_kv": 64, "d_ff": 1024}


def build_model(kind: str, wide: bool = False):
    """A randomly initialised model of ``kind`` (seeded), vocab ``VOCAB``."""
    import torch
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        MarianConfig,
        MarianMTModel,
        T5Config,
        T5ForConditionalGeneration,
    )  # fmt: skip

    torch.manual_seed(0)
    common_t5 = {"vocab_size": VOCAB, "d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 3,
                 "num_decoder_layers": 3, "num_heads": 4,  # equal: generate() sizes its cache by num_layers
 "decoder_start_token_id": 0,
                 "eos_token_id": 1, "pad_token_id": 0, "relative_attention_num_buckets": 8}  # fmt: skip
    common_bart = {"vocab_size": VOCAB, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2,
                   "encoder_attention_heads": 4, "decoder_attention_heads": 4,
                   "encoder_ffn_dim": 37, "decoder_ffn_dim": 37, "max_position_embeddings": 128}  # fmt: skip
    if wide:
        common_t5.update(WIDE)
        common_bart.update(d_model=256, encoder_ffn_dim=1024, decoder_ffn_dim=1024)
    if kind == "t5":
        return T5ForConditionalGeneration(T5Config(**common_t5))
    if kind == "t5v11":
        return T5ForConditionalGeneration(
            T5Config(**common_t5, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        )
    if kind == "bart":
        return BartForConditionalGeneration(
            BartConfig(
                **common_bart,
                bos_token_id=0,
                pad_token_id=1,
                eos_token_id=2,
                decoder_start_token_id=2,
                forced_eos_token_id=2,
            )
        )
    if kind == "marian":
        return MarianMTModel(
            MarianConfig(
                **common_bart,
                eos_token_id=0,
                pad_token_id=2,
                decoder_start_token_id=2,
                scale_embedding=True,
            )
        )
    raise ValueError(kind)


def make_source(kind: str, folder: Path, wide: bool = False) -> Path:
    """Save model + tokenizer as a local Hugging Face folder."""
    folder.mkdir(parents=True, exist_ok=True)
    build_model(kind, wide).save_pretrained(folder)
    train_tokenizer(kind, folder)
    return folder
