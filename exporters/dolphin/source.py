"""Where a decoder-decoder model comes from, and the PyTorch reference it is checked against.

Two kinds of source give the same three parts (context encoder, projector, main decoder):

- a checkpoint in the Dolphin layout: ``config.json`` with ``model_type = "dolphin"``, the
  context encoder's config under ``encoder_config``, one weights file (or shards) holding
  ``model.*`` (main decoder), ``model.context_encoder.encoder.model.*`` (context encoder),
  ``model.context_encoder.projector.context_projection.*`` (projector) and ``lm_head.*``,
  and one tokenizer whose added tokens ``[memory_0] .. [memory_{N-1}]`` are the memory slots;
- a composition of two local (or hub) causal LMs plus projector weights, described by a
  TOML file (see :class:`Composition`).

Weights are read with safetensors or ``torch.load(weights_only=True)``; nothing is
unpickled. The reference (:class:`Reference`) recomputes the whole prompt for every token,
as the published code does, so it checks the cached ONNX pipeline independently.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edgert.errors import ExportError
from edgert.plugins.families.dolphin.core import MARKER

# Decoder architectures whose attention takes a 4-D additive mask and a past of any length
# through the library's cache classes: the graphs of ``dolphin_graphs`` rely on both.
SUPPORTED = ("qwen2", "qwen3", "llama", "mistral")
MEMORY_TOKEN = re.compile(r"^\[memory_(\d+)\]$")
DEFAULT_TEMPLATE = " <context>{question}"  # the published prompt: a space, memory, question
ENCODER_PREFIX = "model.context_encoder.encoder.model."
PROJECTOR_PREFIX = "model.context_encoder.projector."


class Projector(torch.nn.Module):
    """Linear, or Linear-GELU-Linear ("mlp"), from the context width to the main width."""

    def __init__(self, kind: str, d_in: int, d_out: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "linear":
            self.context_projection = torch.nn.Linear(d_in, d_out)
        else:
            self.context_projection = torch.nn.Sequential(
                torch.nn.Linear(d_in, d_out), torch.nn.GELU(), torch.nn.Linear(d_out, d_out)
            )

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        return self.context_projection(memory)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], where: str) -> Projector:
        """Build from ``context_projection.*`` keys (the ``context_projection.`` prefix optional)."""
        state = {k.removeprefix("context_projection."): v for k, v in state.items()}
        if "weight" in state:
            kind, first = "linear", state["weight"]
        elif "0.weight" in state and "2.weight" in state:
            kind, first = "mlp", state["0.weight"]
        else:
            raise ExportError(
                f"{where} has no projector weights (found keys: {sorted(state)[:6] or 'none'})",
                hint="expected context_projection.weight/.bias (linear) or "
                "context_projection.0.*/.2.* (2-layer MLP)",
            )
        projector = cls(kind, first.shape[1], first.shape[0])
        wanted = {f"context_projection.{k}": v for k, v in state.items()}
        missing, unexpected = projector.load_state_dict(wanted, strict=False)
        if missing or unexpected:
            raise ExportError(
                f"{where}: projector weights do not fit a {kind} projector "
                f"(missing {missing}, unexpected {unexpected})"
            )
        return projector.eval()

    @property
    def widths(self) -> tuple[int, int]:
        first = self.context_projection if self.kind == "linear" else self.context_projection[0]
        last = self.context_projection if self.kind == "linear" else self.context_projection[2]
        return first.in_features, last.out_features


@dataclass
class DolphinSource:
    """The three parts, their tokenizers and how a prompt is laid out."""

    spec: str
    encoder: Any  # base model: input_ids -> last_hidden_state
    projector: Projector
    main: Any  # causal LM taking inputs_embeds
    tokenizer_json: str  # the main decoder's (question and answer)
    context_tokenizer_json: str  # the context encoder's
    memory_ids: tuple[int, ...]  # appended to every context; their states become the memory
    template: str = DEFAULT_TEMPLATE
    eos_token_ids: tuple[int, ...] = ()

    @property
    def slots(self) -> int:
        return len(self.memory_ids)

    @property
    def context_window(self) -> int:
        """Context tokens the encoder takes in one pass, memory tokens excluded."""
        return int(self.encoder.config.max_position_embeddings) - self.slots


def load_source(spec: str, revision: str | None = None) -> DolphinSource:
    """A Dolphin-layout folder or hub id, or a composition ``.toml``."""
    path = Path(spec)
    if path.suffix == ".toml":
        return _from_composition(path)
    folder = path if path.is_dir() else _download(spec, revision)
    config = _read_json(folder / "config.json")
    if config.get("model_type") != "dolphin":
        raise ExportError(
            f"{spec!r} is a {config.get('model_type')!r} model, not a Dolphin checkpoint",
            hint="pass a folder whose config.json says model_type 'dolphin', or a composition "
            ".toml naming a context encoder, a main decoder and projector weights",
        )
    return _from_dolphin(spec, folder, config)


def _download(repo_id: str, revision: str | None) -> Path:
    """A hub snapshot (weights as safetensors or .bin, configs, tokenizer)."""
    if repo_id.count("/") != 1:
        raise ExportError(
            f"{repo_id!r} is neither a folder nor a hub id like owner/name",
            hint="pass a local Dolphin folder, a hub id, or a composition .toml",
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt", "*.model"],
            )
        )
    except Exception as exc:
        raise ExportError(f"cannot download {repo_id!r}: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExportError(f"{path} not found", hint="a Dolphin checkpoint folder has config.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder: safetensors (sharded or not) or weights-only .bin."""
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(folder / shard)))
        return state
    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ExportError(
        f"no weights in {folder}",
        hint="expected model.safetensors, model.safetensors.index.json or pytorch_model.bin",
    )


def _from_dolphin(spec: str, folder: Path, config: dict[str, Any]) -> DolphinSource:
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Model

    if not isinstance(config.get("encoder_config"), dict):
        raise ExportError(
            f"{folder}/config.json has no encoder_config",
            hint="the Dolphin layout keeps the context encoder's Qwen2 config under encoder_config",
        )
    main_config = {k: v for k, v in config.items() if k not in ("encoder_config", "auto_map")}
    main_config.update(model_type="qwen2", architectures=["Qwen2ForCausalLM"])
    main_cfg = Qwen2Config.from_dict(main_config)
    encoder_cfg = Qwen2Config.from_dict({**config["encoder_config"], "model_type": "qwen2"})
    for cfg in (main_cfg, encoder_cfg):
        cfg._attn_implementation = "eager"
    state = _weights(folder)
    projector = Projector.from_state_dict(_strip(state, PROJECTOR_PREFIX), f"checkpoint {spec}")
    encoder = Qwen2Model(encoder_cfg)
    _load(encoder, _strip(state, ENCODER_PREFIX), f"{spec} context encoder")
    main = Qwen2ForCausalLM(main_cfg)
    main_state = {
        k: v
        for k, v in state.items()
        if not k.startswith("model.context_encoder.") and (k.startswith(("model.", "lm_head.")))
    }
    if "lm_head.weight" not in main_state and main_cfg.tie_word_embeddings:
        main_state["lm_head.weight"] = main_state.get("model.embed_tokens.weight")
    _load(main, main_state, f"{spec} main decoder")
    tokenizer_json = _tokenizer_json(folder)
    memory_ids = _memory_ids(tokenizer_json, spec)
    declared = config.get("memory_size", config.get("mem_size"))
    source = DolphinSource(
        spec=spec,
        encoder=encoder.eval(),
        projector=projector,
        main=main.eval(),
        tokenizer_json=tokenizer_json,
        context_tokenizer_json=tokenizer_json,
        memory_ids=memory_ids,
        template=config.get("prompt_template", DEFAULT_TEMPLATE),
        eos_token_ids=_eos(folder, config),
    )
    check(source, declared_slots=declared)
    return source


@dataclass(frozen=True)
class Composition:
    """``[dolphin]`` table of a composition file; paths are relative to the file.

    Example::

        [dolphin]
        context_encoder = "small-lm"           # a causal LM folder or hub id
        main_decoder = "big-lm"
        projector = "projector.safetensors"    # context_projection.* (linear or 2-layer MLP)
        memory_slots = 32                      # optional: checked against the memory tokens
        prompt_template = " <context>{question}"
    """

    context_encoder: str
    main_decoder: str
    projector: str
    memory_slots: int | None = None
    prompt_template: str = DEFAULT_TEMPLATE


def _from_composition(path: Path) -> DolphinSource:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from edgert.schema import build

    if not path.is_file():
        raise ExportError(f"composition file {path} not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ExportError(f"{path} is not valid TOML: {exc}") from exc
    if "dolphin" not in data:
        raise ExportError(f"{path} has no [dolphin] table", hint=Composition.__doc__)
    comp = build(Composition, data["dolphin"], f"{path} [dolphin]", ExportError)

    def resolve(value: str) -> str:
        local = path.parent / value
        return str(local) if local.exists() else value

    parts = {}
    for role, where in (
        ("context encoder", comp.context_encoder),
        ("main decoder", comp.main_decoder),
    ):
        try:
            config = AutoConfig.from_pretrained(resolve(where))
        except (OSError, ValueError) as exc:
            raise ExportError(f"cannot read the {role} config from {where!r}: {exc}") from exc
        if config.model_type not in SUPPORTED:
            raise ExportError(
                f"the {role} {where!r} is a {config.model_type!r} model",
                hint=f"supported decoder architectures: {', '.join(SUPPORTED)}",
            )
        parts[role] = resolve(where)
    encoder = AutoModel.from_pretrained(parts["context encoder"], attn_implementation="eager")
    main = AutoModelForCausalLM.from_pretrained(parts["main decoder"], attn_implementation="eager")
    projector_path = Path(resolve(comp.projector))
    if not projector_path.is_file():
        raise ExportError(
            f"projector weights {comp.projector!r} not found (looked in {path.parent})",
            hint="save the projector with safetensors: context_projection.weight/.bias",
        )
    projector = Projector.from_state_dict(_projector_state(projector_path), str(projector_path))
    context_json = _tokenizer_json(Path(parts["context encoder"]))
    source = DolphinSource(
        spec=str(path),
        encoder=encoder.eval(),
        projector=projector,
        main=main.eval(),
        tokenizer_json=_tokenizer_json(Path(parts["main decoder"])),
        context_tokenizer_json=context_json,
        memory_ids=_memory_ids(context_json, parts["context encoder"]),
        template=comp.prompt_template,
        eos_token_ids=_eos(Path(parts["main decoder"]), main.config.to_dict()),
    )
    check(source, declared_slots=comp.memory_slots)
    return source


def _projector_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ExportError(f"{path} is not a state dict of projector tensors")
    return state


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def _load(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    if not state:
        raise ExportError(f"the checkpoint has no weights for the {what}")
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("rotary_emb.inv_freq")]
    if missing or unexpected:
        raise ExportError(
            f"weights of the {what} do not match its config: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}",
            hint="check encoder_config / the model config against the weights",
        )


def _tokenizer_json(folder: Path) -> str:
    local = folder / "tokenizer.json"
    if local.is_file():
        return local.read_text(encoding="utf-8")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except Exception as exc:
        raise ExportError(f"cannot load the tokenizer of {folder}: {exc}") from exc
    return tokenizer.backend_tokenizer.to_str()


def _memory_ids(tokenizer_json: str, where: str) -> tuple[int, ...]:
    """Ids of ``[memory_0] .. [memory_{N-1}]`` in order; they must be consecutive from 0."""
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_str(tokenizer_json).get_vocab(with_added_tokens=True)
    found = {int(m.group(1)): i for t, i in vocab.items() if (m := MEMORY_TOKEN.match(t))}
    if not found:
        raise ExportError(
            f"the tokenizer of {where} has no memory tokens [memory_0] .. [memory_N-1]",
            hint="add them as special tokens; the context encoder's states at these tokens "
            "become the memory embeddings",
        )
    if sorted(found) != list(range(len(found))):
        raise ExportError(
            f"the memory tokens of {where} are not numbered 0..{len(found) - 1}: "
            f"{sorted(found)[:8]}"
        )
    return tuple(found[i] for i in range(len(found)))


def _eos(folder: Path, config: dict[str, Any]) -> tuple[int, ...]:
    generation = folder / "generation_config.json"
    eos = _read_json(generation).get("eos_token_id") if generation.is_file() else None
    if eos is None:
        eos = config.get("eos_token_id")
    if eos is None:
        return ()
    return tuple(sorted({eos} if isinstance(eos, int) else set(eos)))


def check(source: DolphinSource, declared_slots: int | None = None) -> None:
    """Widths, memory slots, template and architecture agree, or a clear error."""
    d_in, d_out = source.projector.widths
    d_context = int(source.encoder.config.hidden_size)
    d_main = int(source.main.config.hidden_size)
    if (d_in, d_out) != (d_context, d_main):
        raise ExportError(
            f"the projector maps width {d_in} -> {d_out}, but the context encoder is "
            f"{d_context} wide and the main decoder {d_main}",
            hint=f"a projector for these decoders maps {d_context} -> {d_main}",
        )
    if declared_slots is not None and declared_slots != source.slots:
        raise ExportError(
            f"memory token count mismatch: the config says {declared_slots} memory slots, the "
            f"context tokenizer has {source.slots} memory tokens ([memory_0] .. "
            f"[memory_{source.slots - 1}])",
            hint="make memory_size (or memory_slots) match the tokenizer's memory tokens",
        )
    if source.template.count(MARKER) != 1 or "{question}" not in source.template:
        raise ExportError(
            f"prompt template {source.template!r} must contain {MARKER} once and {{question}}",
            hint=f"e.g. {DEFAULT_TEMPLATE!r}",
        )
    for role, model in (("context encoder", source.encoder), ("main decoder", source.main)):
        config = model.config
        if config.model_type not in SUPPORTED:
            raise ExportError(
                f"the {role} is a {config.model_type!r} model",
                hint=f"supported decoder architectures: {', '.join(SUPPORTED)}",
            )
        if getattr(config, "use_sliding_window", False):
            raise ExportError(
                f"the {role} uses sliding-window attention, which edgert's graphs do not model",
                hint="set use_sliding_window false in its config if the window exceeds the context",
            )


class Reference(torch.nn.Module):
    """The composition in PyTorch, without any cache: the ground truth for validation."""

    def __init__(self, source: DolphinSource) -> None:
        super().__init__()
        self.source = source

    @torch.inference_mode()
    def memory(self, context_ids: list[int]) -> torch.Tensor:
        """``[N, d_main]`` memory embeddings of one context chunk."""
        ids = torch.tensor([[*context_ids, *self.source.memory_ids]])
        hidden = self.source.encoder(input_ids=ids).last_hidden_state
        return self.source.projector(hidden[0, -self.source.slots :])

    @torch.inference_mode()
    def greedy(
        self, memory: torch.Tensor, prompt_ids: list[int], steps: int
    ) -> tuple[list[int], torch.Tensor]:
        """Greedy tokens from a prompt whose single ``-1`` stands for ``memory``, and the
        logits that chose each of them (``[len(tokens), vocab]``)."""
        embed = self.source.main.get_input_embeddings()
        cut = prompt_ids.index(-1)
        parts = [
            embed(torch.tensor(prompt_ids[:cut], dtype=torch.long)),
            memory,
            embed(torch.tensor(prompt_ids[cut + 1 :], dtype=torch.long)),
        ]
        sequence = torch.cat(parts)[None]
        prompt_length = sequence.shape[1]
        tokens: list[int] = []
        eos = set(self.source.eos_token_ids)
        for index in range(steps):
            logits = self.source.main(inputs_embeds=sequence, use_cache=False).logits[0]
            tokens.append(int(logits[-1].argmax()))
            if tokens[-1] in eos or index == steps - 1:
                break
            sequence = torch.cat([sequence, embed(torch.tensor([[tokens[-1]]]))], dim=1)
        return tokens, logits[prompt_length - 1 :].float()
