"""Tiny decoder-decoder checkpoints built here: the Dolphin layout and a composition.

Odd sizes on purpose (context width 24, main width 40, grouped-query attention, vocab 99)
so a wrong transpose or a shared assumption about widths cannot pass by accident. Weights
are drawn with a large init range so greedy choices are clear-cut.
"""

from __future__ import annotations

import json
from pathlib import Path

VOCAB = 99
EOS = "<|endoftext|>"
CORPUS = [
    "the context encoder reads a long document once",
    "memory embeddings replace placeholder tokens in the prompt",
    "a small model answers questions about the text on the phone",
    "the cache keeps the memory of recent contexts",
    "who wrote the report and when was it published",
] * 4


def train_tokenizer(folder: Path, slots: int | None) -> Path:
    """A BPE tokenizer with ``VOCAB`` entries, EOS first, then ``slots`` memory tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    memory = [f"[memory_{i}]" for i in range(slots or 0)]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - len(memory), special_tokens=[EOS], show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.add_special_tokens(memory)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


def qwen2_config(hidden: int, heads: int, kv_heads: int, layers: int, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=VOCAB, hidden_size=hidden, intermediate_size=hidden + 13,
        num_attention_heads=heads, num_key_value_heads=kv_heads, num_hidden_layers=layers,
        max_position_embeddings=extra.pop("max_position_embeddings", 160),
        initializer_range=0.2, eos_token_id=0, tie_word_embeddings=False, **extra,
    )  # fmt: skip


def make_dolphin(folder: Path, *, slots: int = 3, projector: str = "linear", seed: int = 0,
                 drop: tuple[str, ...] = (), memory_size: int | None = None) -> Path:  # fmt: skip
    """A Dolphin-layout checkpoint: config.json, model.safetensors, tokenizer.json.

    ``drop`` removes weight keys with these prefixes (to build broken checkpoints).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2ForCausalLM, Qwen2Model

    torch.manual_seed(seed)
    encoder_cfg = qwen2_config(24, 2, 1, 2)
    main_cfg = qwen2_config(40, 4, 2, 2)
    encoder, main = Qwen2Model(encoder_cfg), Qwen2ForCausalLM(main_cfg)
    state = {k: v for k, v in main.state_dict().items()}
    state.update({f"model.context_encoder.encoder.model.{k}": v
                  for k, v in encoder.state_dict().items()})  # fmt: skip
    prefix = "model.context_encoder.projector.context_projection."
    if projector == "linear":
        layer = torch.nn.Linear(24, 40)
        state[prefix + "weight"], state[prefix + "bias"] = layer.weight, layer.bias
    else:
        first, second = torch.nn.Linear(24, 40), torch.nn.Linear(40, 40)
        state.update({prefix + "0.weight": first.weight, prefix + "0.bias": first.bias,
                      prefix + "2.weight": second.weight, prefix + "2.bias": second.bias})  # fmt: skip
    state = {k: v.detach().contiguous().clone() for k, v in state.items()
             if not k.startswith(drop) or not drop}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    config = {**main_cfg.to_dict(), "model_type": "dolphin",
              "architectures": ["DolphinForCausalLM"], "encoder_config": encoder_cfg.to_dict()}  # fmt: skip
    if memory_size is not None:
        config["memory_size"] = memory_size
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    train_tokenizer(folder, slots)
    return folder


def make_composition(folder: Path, *, slots: int = 4, projector_widths: tuple[int, int] = (32, 48),
                     memory_slots: int | None = None, seed: int = 1) -> Path:  # fmt: skip
    """Two causal LM folders (Qwen2 context encoder, Llama main decoder), projector weights
    (2-layer MLP) and the ``dolphin.toml`` that ties them together."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2ForCausalLM

    torch.manual_seed(seed)
    context = Qwen2ForCausalLM(qwen2_config(32, 4, 4, 1, max_position_embeddings=200))
    main = LlamaForCausalLM(
        LlamaConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=61, num_attention_heads=6,
                    num_key_value_heads=3, num_hidden_layers=2, max_position_embeddings=256,
                    initializer_range=0.2, eos_token_id=0, bos_token_id=None,
                    tie_word_embeddings=False)
    )  # fmt: skip
    context.save_pretrained(folder / "ctx")
    train_tokenizer(folder / "ctx", slots)
    main.save_pretrained(folder / "main")
    train_tokenizer(folder / "main", None)
    d_in, d_out = projector_widths
    first, second = torch.nn.Linear(d_in, d_out), torch.nn.Linear(d_out, d_out)
    save_file({"context_projection.0.weight": first.weight.detach().contiguous(),
               "context_projection.0.bias": first.bias.detach().contiguous(),
               "context_projection.2.weight": second.weight.detach().contiguous(),
               "context_projection.2.bias": second.bias.detach().contiguous()},
              str(folder / "projector.safetensors"))  # fmt: skip
    lines = ["[dolphin]", 'context_encoder = "ctx"', 'main_decoder = "main"',
             'projector = "projector.safetensors"', 'prompt_template = "Q: {question} M: <context> A:"']  # fmt: skip
    if memory_slots is not None:
        lines.append(f"memory_slots = {memory_slots}")
    (folder / "dolphin.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "dolphin.toml"


CONTEXTS = [
    "the context encoder reads a long document once and the cache keeps its memory",
    "who wrote the report and when was it published on the phone",
    "memory embeddings replace placeholder tokens in the prompt of a small model",
]
QUESTIONS = ["who wrote the report", "when was it published", "what does the cache keep"]


def export(source, out, device="cpu-generic", **options):
    import edgert
    from edgert.catalog import get_catalog
    from edgert.exporters.dolphin.export import DolphinExport, export_dolphin

    profile, _ = edgert.resolve_device(device)
    return export_dolphin(
        DolphinExport(source=str(source), out=out, **options), profile, get_catalog()
    )
