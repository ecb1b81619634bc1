"""Seq2seq CPU generation: edgert against transformers, optimum ORT and CTranslate2.

Engines: edgert fp32 and int8; transformers ``generate`` (fp32); optimum
``ORTModelForSeq2SeqLM`` fp32 and dynamic int8 (``ORTQuantizer``, VNNI or AVX2 recipe);
CTranslate2 int8. One interleaved run measures them all.

The model is T5-small-shaped (d_model 512, d_ff 2048, 6 encoder + 6 decoder layers, 8 heads
of 64, vocabulary 32128, ReLU feed-forward, tied embeddings) with seeded random weights, saved
with ``save_pretrained`` next to a word-level tokenizer ("<pad>", "</s>", "<unk>",
"t3".."t32127"); nothing is downloaded. Every engine gets the same input: batch 1, exactly
128 seeded random ids, and generates greedily exactly 64 new tokens, with EOS masked until
then (``min_new_tokens`` / ``min_decoding_length``). A run that returns another count fails.

Random T5 weights echo the previous token through the tied LM head, so every engine emits
<pad> (the decoder start token) 64 times. The work per token does not depend on which token
it is; but a text stream shows nothing for special tokens, so where an engine's stream
yields no text (edgert), its TTFT comes from the engine's own first-token time instead
(``ttft_source`` in the JSON).

How it runs:

* Each engine is prepared once in this process (ONNX export, quantization, conversion).
* Each (engine, threads) pair gets its own long-lived worker process
  (``benchmarks/_peers.py``), which loads its sessions once, does one untimed warm-up
  generation, then answers "run" requests over JSON lines. Peak RSS is therefore per
  engine: the worker's own high-water mark (``VmHWM``; ``ru_maxrss`` where there is no
  /proc) after loading and all its runs, library imports included since a user pays for
  them too.
* Rounds alternate the workers (starting point rotated each round, a short pause before
  each request so the previous engine's idle threads stop spinning), so drift on a
  shared machine hits every engine alike.

Per run: time to first token (call start to the first new token: encoder plus one decoder
step), per-token latency (median gap between consecutive new tokens, steps 2..64), tokens/s
(64 / whole call) and the whole call in ms. The table shows medians over rounds, at each
engine's best thread count (lowest median total; both are in the JSON), next to peak RSS,
the engine's files on disk, load time, and how many leading tokens match transformers fp32.

Bandwidth floor: decoding one token reads at least the decoder's weights once (self- and
cross-attention Q/O, feed-forward, norms; not the cross-attention K/V projections, which run
once per input) plus the LM head: 4 bytes a weight in fp32, 1 byte per matrix weight in
int8. Divided by the best memory bandwidth numpy measures here (512 MB copy and sum, best of
5, one thread), that gives a per-token time no engine can beat once the weights no longer
fit in cache; "x floor" is how far each engine is from it.

Disk and RSS are what each engine really keeps: the optimum export has a first-step decoder
and a decoder-with-past, each with its own copy of the decoder weights and LM head.

    python benchmarks/seq2seq.py [--rounds 5] [--threads 1,2] [--engines a,b] [--quick]
                                 [--workdir DIR] [--out benchmarks/results/seq2seq.json]

``--quick`` (development): 2 rounds, 1 thread. ``--workdir`` keeps the model and exports
there and reuses them on the next run. The edgert engines are skipped, with the reason,
when ``edgert.exporters.seq2seq`` does not import.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np
from _peers import ENGINES, NEW_TOKENS, cpu_flags, cpu_name, edgert_missing, has_vnni

HERE = Path(__file__).resolve().parent
INPUT_TOKENS = 128
SEED = 0
T5_SMALL = {
    "d_model": 512, "d_ff": 2048, "num_layers": 6, "num_decoder_layers": 6, "num_heads": 8,
    "d_kv": 64, "vocab_size": 32128, "feed_forward_proj": "relu", "tie_word_embeddings": True,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
    "dropout_rate": 0.1, "layer_norm_epsilon": 1e-6, "pad_token_id": 0, "eos_token_id": 1,
    "decoder_start_token_id": 0,
}  # fmt: skip
PEERS = ("transformers", "optimum-fp32", "optimum-int8", "ct2-int8")
OURS = ("edgert-fp32", "edgert-int8", "edgert-int4")
PAUSE_S = 0.25  # before each request: OpenMP / ORT workers of the last engine go idle


# --- model ----------------------------------------------------------------------------------


def build_model(model_dir: Path) -> None:
    """Seeded random T5-small-shaped checkpoint plus a word-level tokenizer, saved locally."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    torch.manual_seed(SEED)
    model = T5ForConditionalGeneration(T5Config(**T5_SMALL)).eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    vocab.update({f"t{i}": i for i in range(3, T5_SMALL["vocab_size"])})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(model_dir)


def decoder_bytes_per_token(model_dir: Path) -> dict[str, int]:
    """Weight bytes one decoding step has to read, from the checkpoint's tensor shapes."""
    from safetensors import safe_open

    matrix = vector = 0
    lm_head = None
    with safe_open(model_dir / "model.safetensors", "np") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}  # noqa: SIM118
    for key, shape in shapes.items():
        n = int(np.prod(shape))
        if key == "lm_head.weight":
            lm_head = n
        if not key.startswith("decoder.") or key.startswith("decoder.embed_tokens"):
            continue
        if ".EncDecAttention.k." in key or ".EncDecAttention.v." in key:
            continue  # cross-attention K/V: computed once from the encoder output
        if len(shape) == 2 and not key.endswith("relative_attention_bias.weight"):
            matrix += n
        else:
            vector += n  # norms and the bias lookup table stay fp32
    matrix += lm_head if lm_head is not None else int(np.prod(shapes["shared.weight"]))
    # int4 blocks of 32 carry one fp32 scale each: 0.5 + 4/32 bytes per weight
    int4 = int(matrix * (0.5 + 4 / 32)) + 4 * vector
    return {
        "params": matrix + vector,
        "fp32": 4 * (matrix + vector),
        "int8": matrix + 4 * vector,
        "int4": int4,
    }


def memory_bandwidth(mb: int = 512, repeats: int = 5) -> dict[str, float]:
    """Best-of-N single-thread numpy copy (read + write) and sum (read), in GB/s."""
    src = np.ones(mb * 2**20 // 4, dtype=np.float32)
    dst = np.zeros_like(src)
    copy = read = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        copy = max(copy, 2 * src.nbytes / (time.perf_counter() - t) / 1e9)
        t = time.perf_counter()
        src.sum()
        read = max(read, src.nbytes / (time.perf_counter() - t) / 1e9)
    return {"copy_gbps": copy, "read_gbps": read, "best_gbps": max(copy, read), "mb": mb}


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- workers --------------------------------------------------------------------------------


class Worker:
    """One engine at one thread count in its own process, answering JSON lines."""

    def __init__(self, engine: str, threads: int, artifact: Path, input_ids: list[int],
                 work: Path) -> None:  # fmt: skip
        self.engine, self.threads, self.key = engine, threads, f"{engine}@{threads}"
        job = work / f"job-{engine}-{threads}.json"
        job.write_text(json.dumps({"engine": engine, "threads": threads,
                                   "artifact": str(artifact), "input_ids": input_ids}))  # fmt: skip
        self.log_path = work / f"worker-{engine}-{threads}.log"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false",
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   TRANSFORMERS_VERBOSITY="error")  # fmt: skip
        self.log: IO[str] = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_peers.py"), str(job)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env, cwd=HERE.parent,
        )  # fmt: skip
        self.ready: dict[str, Any] = {}
        self.runs: list[dict[str, Any]] = []
        self.error: str | None = None

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.log_path.read_text()[-2000:]
            return {"error": f"worker exited ({self.proc.returncode}); log tail:\n{tail}"}
        return json.loads(line)

    def wait_ready(self) -> None:
        self.ready = self._read()
        self.error = self.ready.get("error")

    def request(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # _read reports the exit and the log
        reply = self._read()
        if "error" in reply:
            self.error = reply["error"]
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_run = [
        {"ttft_ms": r["ttft_ms"], "per_token_ms": statistics.median(r["step_ms"]),
         "total_ms": r["total_ms"], "tok_s": NEW_TOKENS / (r["total_ms"] / 1000)}
        for r in runs
    ]  # fmt: skip
    med = {k: statistics.median(p[k] for p in per_run) for k in per_run[0]}
    return {**med, "rounds": len(runs), "runs": per_run}


def same_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (2 with --quick)")
    parser.add_argument("--threads", default=None, help="comma list, default 1,2 (1 with --quick)")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma list of: " + ", ".join(ENGINES)
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds, 1 thread: for development")
    parser.add_argument("--workdir", type=Path, default=None, help="keep and reuse exports here")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "seq2seq.json")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    threads = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    names = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in names if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {list(ENGINES)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    skipped: dict[str, str] = {}
    missing = edgert_missing() if any(e in OURS for e in names) else None
    if missing:
        for e in OURS:
            if e in names:
                skipped[e] = missing
                print(f"{e}: skipped ({missing})")
        names = [e for e in names if e not in OURS]

    with tempfile.TemporaryDirectory(prefix="seq2seq-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = run_all(names, threads, rounds, work, skipped)
    results["config"]["quick"] = args.quick
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def prepare(names: list[str], work: Path, skipped: dict[str, str]) -> dict[str, Path]:
    model_dir = work / "model"
    recipe = json.dumps({**T5_SMALL, "seed": SEED}, sort_keys=True)
    stamp = work / "model.recipe.json"
    if not stamp.exists() or stamp.read_text() != recipe:
        for name in ("model", *ENGINES):  # exports of another model: redo them all
            (work / f"{name}.done").unlink(missing_ok=True)
            if (work / name).is_dir():
                shutil.rmtree(work / name)
        print("building the T5-small-shaped model ...", flush=True)
        build_model(model_dir)
        stamp.write_text(recipe)
    artifacts = {}
    for name in names:
        done = work / f"{name}.done"  # holds the artifact path; lets --workdir reuse it
        if done.exists() and Path(done.read_text()).exists():
            artifacts[name] = Path(done.read_text())
            continue
        print(f"preparing {name} ...", flush=True)
        t = time.perf_counter()
        try:
            artifacts[name] = ENGINES[name].prepare(model_dir, work)
        except Exception as exc:
            skipped[name] = f"prepare failed: {type(exc).__name__}: {exc}"
            print(f"{name}: skipped ({skipped[name]})")
            continue
        done.write_text(str(artifacts[name]))
        print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    return artifacts


def run_all(names: list[str], threads: list[int], rounds: int, work: Path,
            skipped: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    artifacts = prepare(names, work, skipped)
    model_dir = work / "model"
    weights = decoder_bytes_per_token(model_dir)
    print("measuring memory bandwidth ...", flush=True)
    bandwidth = memory_bandwidth()
    floor_ms = {
        p: weights[p] / (bandwidth["best_gbps"] * 1e9) * 1000 for p in ("fp32", "int8", "int4")
    }
    rng = np.random.default_rng(SEED)
    input_ids = [int(i) for i in rng.integers(3, 32000, size=INPUT_TOKENS)]

    workers: list[Worker] = []
    try:
        for name in artifacts:
            for n in threads:
                print(f"loading {name} @ {n} thread(s) ...", flush=True)
                w = Worker(name, n, artifacts[name], input_ids, work)
                w.wait_ready()  # one at a time: load times are not contended
                workers.append(w)
                if w.error:
                    print(f"  failed:\n{w.error}")
        live = [w for w in workers if not w.error]
        for r in range(rounds):
            print(f"round {r + 1}/{rounds} ...", flush=True)
            shift = r % len(live) if live else 0
            for w in live[shift:] + live[:shift]:
                if w.error:
                    continue
                time.sleep(PAUSE_S)
                reply = w.request("run")
                if "error" in reply:
                    print(f"  {w.key} failed:\n{reply['error']}")
                else:
                    w.runs.append(reply)
        stats = {w.key: w.request("stats") for w in workers if not w.error}
    finally:
        for w in workers:
            w.close()

    reference = next((w.runs[0]["token_ids"] for w in workers
                      if w.engine == "transformers" and w.runs), None)  # fmt: skip
    engines: dict[str, Any] = {}
    for name in names:
        if name in skipped:
            continue
        cls = ENGINES[name]
        entry: dict[str, Any] = {"precision": cls.precision, "disk_bytes": disk_bytes(artifacts[name]),
                                 "artifact_files": sorted(p.name for p in artifacts[name].rglob("*") if p.is_file()),
                                 "by_threads": {}}  # fmt: skip
        for w in workers:
            if w.engine != name:
                continue
            row: dict[str, Any] = {"error": w.error} if w.error or not w.runs else summarize(w.runs)
            row.update(
                {
                    k: w.ready.get(k)
                    for k in ("import_s", "load_s", "warmup_ms", "rss_after_load_mib", "stages_mib")
                }
            )
            row.update(stats.get(w.key, {}))
            if w.runs:
                row["floor_ratio"] = row["per_token_ms"] / floor_ms[cls.precision]
                if reference is not None:
                    row["same_prefix_as_transformers"] = same_prefix(
                        w.runs[0]["token_ids"], reference
                    )
                row["token_ids"] = w.runs[0]["token_ids"]
                row["ttft_source"] = sorted({x["ttft_source"] for x in w.runs})
                row["deterministic"] = all(x["token_ids"] == w.runs[0]["token_ids"] for x in w.runs)
            entry["by_threads"][str(w.threads)] = row
        ok = {t: r for t, r in entry["by_threads"].items() if "total_ms" in r}
        if ok:
            entry["best_threads"] = int(min(ok, key=lambda t: ok[t]["total_ms"]))
            entry["best"] = ok[str(entry["best_threads"])]
        else:
            skipped[name] = "no successful runs"
        engines[name] = entry

    return {
        "host": host_info(),
        "config": {"model": {**T5_SMALL, "seed": SEED}, "input_tokens": INPUT_TOKENS,
                   "new_tokens": NEW_TOKENS, "batch": 1, "greedy": True, "rounds": rounds,
                   "threads": threads, "pause_s": PAUSE_S},
        "bandwidth": bandwidth,
        "floor": {"decoder_params_per_token": weights["params"],
                  "bytes_per_token": {"fp32": weights["fp32"], "int8": weights["int8"]},
                  "ms_per_token": floor_ms},
        "engines": engines,
        "skipped": skipped,
        "ratios": ratios(engines),
    }  # fmt: skip


def ratios(engines: dict[str, Any]) -> dict[str, Any]:
    """edgert / peer at each one's best thread count (< 1: edgert is faster / smaller)."""
    out: dict[str, Any] = {}
    for ours in OURS:
        if "best" not in engines.get(ours, {}):
            continue
        a = engines[ours]["best"]
        for peer in PEERS:
            if "best" not in engines.get(peer, {}):
                continue
            b = engines[peer]["best"]
            out[f"{ours} / {peer}"] = {
                "per_token": a["per_token_ms"] / b["per_token_ms"],
                "ttft": a["ttft_ms"] / b["ttft_ms"],
                "peak_rss": a["peak_rss_mib"] / b["peak_rss_mib"],
            }
    return out


def host_info() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    flags = cpu_flags()
    return {
        "cpu": cpu_name() or platform.processor(), "logical_cpus": os.cpu_count(),
        "avx2": "avx2" in flags, "avx512_vnni": has_vnni(), "python": platform.python_version(),
        "versions": {d: version(d) for d in ("edgert", "torch", "transformers", "optimum",
                                              "optimum-onnx", "onnxruntime", "ctranslate2")},
    }  # fmt: skip


def report(results: dict[str, Any]) -> None:
    bw, floor = results["bandwidth"], results["floor"]
    cfg = results["config"]
    print(f"\nT5-small-shaped, batch 1, {cfg['input_tokens']} in -> {cfg['new_tokens']} out, greedy; "
          f"medians over {cfg['rounds']} interleaved rounds; {results['host']['cpu']}")  # fmt: skip
    print(f"memory bandwidth {bw['best_gbps']:.1f} GB/s (copy {bw['copy_gbps']:.1f}, "
          f"sum {bw['read_gbps']:.1f}); decoder reads per token: "
          f"fp32 {floor['bytes_per_token']['fp32'] / 1e6:.0f} MB -> floor {floor['ms_per_token']['fp32']:.2f} ms, "
          f"int8 {floor['bytes_per_token']['int8'] / 1e6:.0f} MB -> floor {floor['ms_per_token']['int8']:.2f} ms")  # fmt: skip
    head = (f"  {'engine':<14} {'thr':>4} {'TTFT ms':>8} {'tok ms':>7} {'tok/s':>7} {'total ms':>9} "
            f"{'x floor':>7} {'RSS MiB':>8} {'disk MB':>8} {'load s':>7} {'same':>5}")  # fmt: skip
    print(head)
    for name, e in results["engines"].items():
        for t, r in e["by_threads"].items():
            mark = "*" if e.get("best_threads") == int(t) else " "
            if "total_ms" not in r:
                print(f"  {name:<14} {t:>3}{mark} failed: {str(r.get('error'))[-200:]}")
                continue
            load = (r["import_s"] or 0) + (r["load_s"] or 0)
            same = r.get("same_prefix_as_transformers", "-")
            ttft = f"{r['ttft_ms']:.1f}" + (
                "~" if set(r["ttft_source"]) - {"call", "stream"} else ""
            )
            print(f"  {name:<14} {t:>3}{mark} {ttft:>8} {r['per_token_ms']:>7.2f} "
                  f"{r['tok_s']:>7.1f} {r['total_ms']:>9.1f} {r['floor_ratio']:>7.1f} "
                  f"{r['peak_rss_mib']:>8.0f} {e['disk_bytes'] / 1e6:>8.1f} {load:>7.1f} {same!s:>5}")  # fmt: skip
    print(
        "  * best thread count (lowest median total); RSS = peak of that engine's process; "
        f"same = leading tokens equal to transformers' (of {cfg['new_tokens']}); "
        "~ = TTFT from the engine's own stats (its stream showed no text)"
    )
    for name, why in results["skipped"].items():
        print(f"  {name}: skipped ({why})")
    print(
        "\nwhere the memory goes (MiB of RSS, best thread count): the interpreter; the "
        "engine's imports; loading (libraries it imports then, sessions, weights, tokenizer; "
        "peak = high-water mark then); the first generation (arenas, caches); the peak"
    )
    print(f"  {'engine':<14} {'python':>7} {'imports':>8} {'load':>6} {'(peak)':>7} "
          f"{'1st run':>8} {'peak':>6}")  # fmt: skip
    for name, e in results["engines"].items():
        r = e["by_threads"].get(str(e.get("best_threads")), {})
        s = r.get("stages_mib")
        if s:
            print(f"  {name:<14} {s['interpreter']:>7.0f} {s['imports']:>8.0f} {s['load']:>6.0f} "
                  f"{s['load_peak']:>7.0f} {s['first_run']:>8.0f} {r['peak_rss_mib']:>6.0f}")  # fmt: skip
    if results["ratios"]:
        print("\nedgert / peer at best thread counts (< 1: edgert faster / smaller)")
        print(f"  {'':<30} {'per-token':>9} {'TTFT':>7} {'RSS':>7}")
        for key, r in results["ratios"].items():
            print(f"  {key:<30} {r['per_token']:>9.2f} {r['ttft']:>7.2f} {r['peak_rss']:>7.2f}")
    else:
        print("\nedgert / peer ratios: no edgert result to compare")


if __name__ == "__main__":
    main()
