"""Engines for ``benchmarks/seq2seq.py``: how each one is prepared, loaded and timed.

Every engine has three parts:

* ``prepare(model_dir, work)``: export / convert / quantize the saved model into its own
  folder under ``work`` (run once, in the parent process) and return that folder;
* ``load(artifact, threads)``: create the sessions (run once, in the engine's worker);
* ``run(input_ids)``: one greedy generation of exactly ``NEW_TOKENS`` tokens, returning a
  :class:`Run` with a timestamp per generated token.

Running this file starts a worker: ``python benchmarks/_peers.py JOB.json``. It loads one
engine at one thread count and then answers JSON lines on stdin/stdout (``run``, ``stats``,
``quit``). Heavy libraries are imported inside the engines, so a worker only pays for what
its own engine needs (the CTranslate2 worker never imports torch).
"""

from __future__ import annotations

import abc
import itertools
import json
import os
import resource
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

NEW_TOKENS = 64
EOS_ID = 1  # T5: 0 <pad> (also the decoder start), 1 </s>, 2 <unk>
# Dynamic int8 for the ORT peer: the per-tensor recipe optimum documents for CPUs.
ORT_INT8_PER_CHANNEL = False


@dataclass
class Run:
    ttft_ms: float  # call start -> first new token (encoder + first decoder step)
    step_ms: list[float]  # gaps between consecutive new tokens: steps 2..NEW_TOKENS
    total_ms: float  # the whole call
    token_ids: list[int]  # the new tokens (decoder start token excluded)
    ttft_source: str = "call"  # where ttft_ms comes from (see EdgertFp32Engine.run)


def _cpuinfo(field: str) -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == field:
            return value.strip()
    return ""


def cpu_name() -> str:
    return _cpuinfo("model name")


def cpu_flags() -> set[str]:
    return set((_cpuinfo("flags") or _cpuinfo("Features")).split())


def has_vnni() -> bool:
    return "avx512_vnni" in cpu_flags()


def _from_stamps(start: float, stamps: list[float], end: float, token_ids: list[int]) -> Run:
    if len(token_ids) != NEW_TOKENS or len(stamps) != NEW_TOKENS:
        raise RuntimeError(
            f"expected exactly {NEW_TOKENS} new tokens, got {len(token_ids)} ids and "
            f"{len(stamps)} step stamps"
        )
    return Run(
        ttft_ms=(stamps[0] - start) * 1000,
        step_ms=[(b - a) * 1000 for a, b in itertools.pairwise(stamps)],
        total_ms=(end - start) * 1000,
        token_ids=[int(t) for t in token_ids],
    )


class Engine(abc.ABC):
    """One engine under test; each subclass implements all three steps."""

    name: ClassVar[str]
    precision: ClassVar[str]  # "fp32", "int8" or "int4": which bandwidth floor applies

    @staticmethod
    @abc.abstractmethod
    def prepare(model_dir: Path, work: Path) -> Path:
        """Convert or export the model once; return the artifact ``load`` reads."""

    def imports(self) -> None:  # noqa: B027 - optional hook; most engines import in load
        """Import the engine's libraries (timed apart from session creation)."""

    @abc.abstractmethod
    def load(self, artifact: Path, threads: int) -> None:
        """Create the engine's sessions once."""

    @abc.abstractmethod
    def run(self, input_ids: list[int]) -> Run:
        """Generate exactly ``NEW_TOKENS`` tokens, timing each."""


# --- transformers / optimum: both go through GenerationMixin.generate -----------------------


def _hf_generate(model: Any, input_ids: list[int]) -> Run:
    """One greedy ``generate``; a stopping criterion stamps each new token as it is chosen.

    ``min_new_tokens`` masks EOS until ``max_new_tokens`` is reached, so exactly
    NEW_TOKENS tokens come out.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    stamps: list[float] = []

    class Stamp(StoppingCriteria):
        def __call__(self, ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
            stamps.append(time.perf_counter())
            return torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)

    ids = torch.tensor([input_ids], dtype=torch.long)
    mask = torch.ones_like(ids)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
            num_beams=1,
            stopping_criteria=StoppingCriteriaList([Stamp()]),
        )
    end = time.perf_counter()
    return _from_stamps(start, stamps, end, out[0, 1:].tolist())


class TransformersEngine(Engine):
    name = "transformers"
    precision = "fp32"

    @staticmethod
    def prepare(model_dir: Path, work: Path) -> Path:
        return model_dir  # generate() runs the saved checkpoint as is

    def imports(self) -> None:
        import torch
        import transformers  # noqa: F401

        self.torch = torch

    def load(self, artifact: Path, threads: int) -> None:
        from transformers import T5ForConditionalGeneration

        self.torch.set_num_threads(threads)
        self.model = T5ForConditionalGeneration.from_pretrained(artifact).eval()

    def run(self, input_ids: list[int]) -> Run:
        return _hf_generate(self.model, input_ids)


ORT_FILES = ("encoder_model", "decoder_model", "decoder_with_past_model")


class OptimumFp32Engine(Engine):
    name = "optimum-fp32"
    precision = "fp32"
    suffix = ""

    @staticmethod
    def prepare(model_dir: Path, work: Path) -> Path:
        from optimum.exporters.onnx import main_export

        out = work / "optimum-fp32"
        # What ORTModelForSeq2SeqLM.from_pretrained(export=True) does: encoder, decoder
        # (first step) and decoder-with-past (every later step), no merged decoder.
        main_export(
            str(model_dir),
            out,
            task="text2text-generation-with-past",
            do_validation=False,
            no_post_process=True,
        )
        return out

    def imports(self) -> None:
        import onnxruntime
        from optimum.onnxruntime import ORTModelForSeq2SeqLM

        self.ort, self.cls = onnxruntime, ORTModelForSeq2SeqLM

    def load(self, artifact: Path, threads: int) -> None:
        so = self.ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        encoder, decoder, with_past = (f"{f}{self.suffix}.onnx" for f in ORT_FILES)
        self.model = self.cls.from_pretrained(
            artifact,
            encoder_file_name=encoder,
            decoder_file_name=decoder,
            decoder_with_past_file_name=with_past,
            use_cache=True,
            use_merged=False,
            provider="CPUExecutionProvider",
            session_options=so,
        )

    def run(self, input_ids: list[int]) -> Run:
        return _hf_generate(self.model, input_ids)


class OptimumInt8Engine(OptimumFp32Engine):
    name = "optimum-int8"
    precision = "int8"
    suffix = "_quantized"

    @staticmethod
    def prepare(model_dir: Path, work: Path) -> Path:
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig

        fp32 = work / "optimum-fp32"
        if not (fp32 / "decoder_with_past_model.onnx").exists():
            OptimumFp32Engine.prepare(model_dir, work)
        recipe = AutoQuantizationConfig.avx512_vnni if has_vnni() else AutoQuantizationConfig.avx2
        config = recipe(is_static=False, per_channel=ORT_INT8_PER_CHANNEL)
        out = work / "optimum-int8"
        for stem in ORT_FILES:
            quantizer = ORTQuantizer.from_pretrained(fp32, file_name=f"{stem}.onnx")
            quantizer.quantize(save_dir=out, quantization_config=config)
        return out


class Ct2Int8Engine(Engine):
    name = "ct2-int8"
    precision = "int8"

    @staticmethod
    def prepare(model_dir: Path, work: Path) -> Path:
        import ctranslate2

        out = work / "ct2-int8"
        # The converter reads the vocabulary through AutoTokenizer: seq2seq.py saves a
        # word-level tokenizer ("<pad>", "</s>", "<unk>", "t3".."t32127") next to the model.
        ctranslate2.converters.TransformersConverter(str(model_dir)).convert(
            str(out), quantization="int8", force=True
        )
        return out

    def imports(self) -> None:
        import ctranslate2

        self.ct2 = ctranslate2

    def load(self, artifact: Path, threads: int) -> None:
        self.translator = self.ct2.Translator(
            str(artifact), device="cpu", compute_type="int8", intra_threads=threads,
            inter_threads=1,
        )  # fmt: skip

    def run(self, input_ids: list[int]) -> Run:
        """``translate_batch`` with a per-step callback (greedy only): the same stamps
        ``generate_tokens`` streams, without its extra thread and queue."""
        stamps: list[float] = []
        ids: list[int] = []

        def on_step(step: Any) -> bool:
            stamps.append(time.perf_counter())
            ids.append(step.token_id)
            return False  # keep going

        source = [f"t{i}" for i in input_ids]
        start = time.perf_counter()
        result = self.translator.translate_batch(
            [source],
            beam_size=1,
            max_decoding_length=NEW_TOKENS,
            min_decoding_length=NEW_TOKENS,  # EOS is masked until then
            return_end_token=True,  # an EOS would show up in the count and fail the run
            callback=on_step,
        )
        end = time.perf_counter()
        if len(result[0].hypotheses[0]) != NEW_TOKENS:
            raise RuntimeError(f"ct2 returned {len(result[0].hypotheses[0])} tokens")
        return _from_stamps(start, stamps, end, ids)


# --- edgert: API under construction; kept small so it is easy to adjust ----------------------


def edgert_missing() -> str | None:
    """Why the edgert seq2seq engines cannot run here, or None when they can."""
    try:
        import edgert.exporters.seq2seq  # noqa: F401
    except Exception as exc:
        return f"import edgert.exporters.seq2seq failed: {type(exc).__name__}: {exc}"
    return None


class EdgertFp32Engine(Engine):
    name = "edgert-fp32"
    precision = "fp32"
    device = "cpu-generic"

    @classmethod
    def device_id(cls) -> str:
        return cls.device

    @classmethod
    def prepare(cls, model_dir: Path, work: Path) -> Path:  # type: ignore[override]
        import edgert
        from edgert.catalog import get_catalog
        from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq

        out = work / cls.name
        profile, _ = edgert.resolve_device(cls.device_id())
        export_seq2seq(Seq2SeqExport(source=str(model_dir), out=out), profile, get_catalog())
        return out

    def imports(self) -> None:
        import onnxruntime  # noqa: F401  (what loading a bundle imports: counted as imports)
        import tokenizers  # noqa: F401

        import edgert

        self.edgert = edgert

    def load(self, artifact: Path, threads: int) -> None:
        self.model = self.edgert.load(artifact, threads=threads)

    def run(self, input_ids: list[int]) -> Run:
        """TTFT from the first streamed piece; steps and total from one ``generate``.

        A stream of special tokens only (<pad>, which random weights produce) yields no
        text: TTFT then falls back to ``stats["first_token_ms"]`` of the ``generate`` call.
        """
        kwargs = {"input_ids": list(input_ids), "max_new_tokens": NEW_TOKENS,
                  "min_new_tokens": NEW_TOKENS}  # fmt: skip
        start = time.perf_counter()
        ttft_ms = None
        for _piece in self.model.stream(**kwargs):
            if ttft_ms is None:
                ttft_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        result = self.model.generate(**kwargs)
        total_ms = (time.perf_counter() - start) * 1000
        source = "stream"
        if ttft_ms is None:
            ttft_ms, source = float(result.stats["first_token_ms"]), "generate.stats"
        steps = [float(x) for x in result.stats["per_token_ms"]]
        if len(steps) == NEW_TOKENS:  # first entry is the first token: keep steps 2..64
            steps = steps[1:]
        ids = [int(t) for t in result.token_ids]
        if len(ids) != NEW_TOKENS:
            raise RuntimeError(f"edgert returned {len(ids)} tokens")
        return Run(ttft_ms, steps, total_ms, ids, ttft_source=source)


class EdgertInt8Engine(EdgertFp32Engine):
    name = "edgert-int8"
    precision = "int8"

    @classmethod
    def device_id(cls) -> str:
        return "x86-avx512-vnni-int8" if has_vnni() else "x86-avx2-int8"


class EdgertInt4Engine(EdgertFp32Engine):
    """Decoder MatMuls in int4 blocks (MatMulNBits), encoder int8."""

    name = "edgert-int4"
    precision = "int4"

    @classmethod
    def device_id(cls) -> str:
        return "x86-avx512-vnni-int4"


ENGINES: dict[str, type[Engine]] = {
    e.name: e
    for e in (TransformersEngine, OptimumFp32Engine, OptimumInt8Engine, Ct2Int8Engine,
              EdgertFp32Engine, EdgertInt8Engine, EdgertInt4Engine)
}  # fmt: skip


# --- worker ----------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's RSS high-water mark.

    Linux: ``VmHWM`` of this process's own address space. ``ru_maxrss`` is not used there:
    it survives fork+exec, so a worker would report its parent's peak (the parent held the
    model and the bandwidth buffers) whenever that is higher than its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def serve(job_path: str) -> None:
    """Load one engine, warm it up, then answer one JSON line per request line."""
    job = json.loads(Path(job_path).read_text())
    # The protocol gets its own copy of stdout; anything a library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def send(obj: dict) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    input_ids = job["input_ids"]
    try:
        engine = ENGINES[job["engine"]]()
        t0 = time.perf_counter()
        started_mib = rss_mib()
        engine.imports()
        t1 = time.perf_counter()
        imported_mib = rss_mib()
        engine.load(Path(job["artifact"]), job["threads"])
        t2 = time.perf_counter()
        loaded_mib, load_peak_mib = rss_mib(), peak_rss_mib()
        warm = engine.run(input_ids)  # first call allocates, caches kernels: not counted
        send({"ready": True, "import_s": t1 - t0, "load_s": t2 - t1,
              "warmup_ms": warm.total_ms, "rss_after_load_mib": rss_mib(),
              "stages_mib": {"interpreter": started_mib, "imports": imported_mib - started_mib,
                             "load": loaded_mib - imported_mib, "load_peak": load_peak_mib,
                             "first_run": rss_mib() - loaded_mib}})  # fmt: skip
    except Exception:
        send({"error": traceback.format_exc()})
        return
    for line in sys.stdin:
        cmd = json.loads(line).get("cmd")
        try:
            if cmd == "run":
                send(asdict(engine.run(input_ids)))
            elif cmd == "stats":
                send({"peak_rss_mib": peak_rss_mib(), "rss_mib": rss_mib()})
            else:
                break
        except Exception:
            send({"error": traceback.format_exc()})


if __name__ == "__main__":
    serve(sys.argv[1])
