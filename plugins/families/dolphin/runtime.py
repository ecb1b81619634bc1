"""Runtime of the ``dolphin`` family: answer questions about a long context.

A small context encoder turns the context into a few memory embeddings once; the main
decoder reads them as part of its prompt. The memory rows are cached by a hash of the
context tokens, so further questions about the same text skip the context encoder and
their first token costs only the main decoder's short prompt.

Contexts longer than the encoder's window (``context_window`` tokens in the manifest) are
refused unless ``context_policy="chunk"``: the text is then cut into consecutive windows,
each encoded on its own into the usual number of memory rows, and the rows are placed in
order where the prompt expects memory (at most ``max_chunks`` windows). Models trained
with one memory block may answer worse from several, which is why chunking is opt-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from edgert.errors import InputError
from edgert.plugins.families.dolphin.context_memory import ContextMemory
from edgert.plugins.families.dolphin.core import DolphinCore, Layout, prompt_ids
from edgert.plugins.families.dolphin.memory_cache import MemoryCache
from edgert.plugins.families.dolphin.static_core import StaticDolphinCore
from edgert.plugins.families.seq2seq.embeddings import EmbeddingTable
from edgert.plugins.families.seq2seq.generation import check_generation
from edgert.plugins.families.seq2seq.names import check_layout
from edgert.plugins.families.seq2seq.runtime import Generation, Seq2SeqModel

if TYPE_CHECKING:
    from edgert.bundle import Bundle
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile


class DolphinModel(Seq2SeqModel):
    """A loaded decoder-decoder model. Build it with :func:`edgert.load`.

    Example:
        >>> model = edgert.load("dolphin-bundle")                          # doctest: +SKIP
        >>> model.generate("Who wrote it?", context=long_text).text        # doctest: +SKIP
        >>> for piece in model.stream("And when?", context=long_text):     # doctest: +SKIP
        ...     print(piece, end="")                     # memory rows come from the cache
    """

    def __init__(
        self,
        bundle: Bundle,
        profile: DeviceProfile,
        catalog: Catalog,
        *,
        allow_fallback: bool | None = None,
        threads: int | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self.bundle, self.profile, self.catalog = bundle, profile, catalog
        self.allow_fallback = allow_fallback
        manifest = bundle.manifest
        self.defaults: dict[str, Any] = check_generation(manifest, bundle.path)
        self.settings: dict[str, Any] = manifest["dolphin"]
        self.open_sessions("memory.onnx", allow_fallback, threads)  # the context encoder
        self.memory_info = self.encoder_info
        table = EmbeddingTable(bundle.file(manifest["embeddings"]["file"]))
        self.static = manifest.get("static")
        lay = Layout(
            **check_layout(manifest["layout"], self.session_info.session, bundle.path, "kv_heads")
        )
        if self.static:
            self.core: Any = StaticDolphinCore(
                self.session_info.session, table, lay, self.static["max_total"]
            )
        else:
            self.core = DolphinCore(self.session_info.session, table, lay)
        self.tokenizer = Tokenizer.from_file(str(bundle.file(manifest["tokenizer"])))
        context_file = self.settings["context_tokenizer"]
        self.context_tokenizer = (
            self.tokenizer
            if context_file == manifest["tokenizer"]
            else Tokenizer.from_file(str(bundle.file(context_file)))
        )
        self.describe_core()
        self.context = ContextMemory(
            self.memory_info.session, self.context_tokenizer, self.settings["memory_ids"],
            window=int(self.settings["context_window"]), max_chunks=int(self.settings["max_chunks"]),
            static=bool(self.static), cache_bytes=self.profile.runtime.cache_mib * 2**20,
        )  # fmt: skip
        self.core.context = self.context  # a decoder-decoder draft gets its own memory too

    # --- public API -------------------------------------------------------------------
    def generate(self, question: str | None = None, *, context: str, **kwargs: Any) -> Generation:
        """Answer ``question`` about ``context``; options are the decoder's."""
        return super().generate(question, context=context, **kwargs)

    def stream(
        self, question: str | None = None, *, context: str, stats: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:  # fmt: skip
        """Yield the answer as it is decoded (``stats`` receives the statistics)."""
        yield from super().stream(question, context=context, stats=stats, **kwargs)

    def before_decoding(self, decoder: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """The context's memory, into the core (and a decoder-decoder draft's), under the
        same lock as the answer."""
        return self._prepare(options.pop("context"), decoder, options)

    def memory(
        self, context: str, *, context_policy: str = "reject"
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Memory rows ``[chunks * slots, d_model]`` of ``context`` and how they were made."""
        return self.context.memory(context, context_policy=context_policy)

    @property
    def memory_cache(self) -> MemoryCache:
        """The LRU of memory rows (``max_bytes`` can be changed; 0 turns it off)."""
        return self.context.cache

    @property
    def context_window(self) -> int:
        """Context tokens one pass of the context encoder takes."""
        return self.context.window

    # --- internals ----------------------------------------------------------------------
    def _prepare(
        self, context: str, decoder: str | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        """Memory for ``context`` into the core (and a dolphin draft's), before decoding."""
        policy = options.pop("context_policy", "reject")
        rows, stats = self.memory(context, context_policy=policy)
        self.core.use_memory(rows, context=(context, policy))
        return stats

    def encode_text(self, text: str, *, truncate: bool = False) -> list[int]:
        """Prompt ids of a question (memory marker included), checked against the limits."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the question is empty", hint="pass the question as text")
        ids = prompt_ids(self.tokenizer, self.settings["template"], text)
        return self._check_length(ids, truncate)

    def _check_length(self, ids: list[int], truncate: bool) -> list[int]:
        limit = self.defaults["max_input_length"]
        if len(ids) > limit:
            raise InputError(
                f"the question has {len(ids)} tokens; profile {self.profile.id!r} takes at most {limit}",
                hint="shorten the question; long text belongs in the context",
            )
        return ids  # the core checks the memory marker when it builds the prompt

    def __repr__(self) -> str:
        return (
            f"DolphinModel({self.bundle.path}, device={self.profile.id}, provider={self.provider})"
        )
