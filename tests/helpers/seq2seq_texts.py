"""The seq2seq test kinds and inputs, and transformers' own greedy output to compare with."""

from __future__ import annotations

import functools

import torch
import transformers

from helpers.seq2seq_models import KINDS  # noqa: F401 (tests take it from here too)

TEXTS = ["the quick brown fox", "a small model runs on the edge of the network", "please"]


@functools.cache
def hf_model(source):
    return transformers.AutoModelForSeq2SeqLM.from_pretrained(source).eval()


def hf_generate(source, text, **kwargs):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    model = hf_model(source)
    ids = torch.tensor([tokenizer.encode(text).ids])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)[0].tolist()
    out = out[1:]  # drop the decoder start token
    eos = model.generation_config.eos_token_id
    return out[: out.index(eos) + 1] if eos in out else out  # generate pads after EOS
