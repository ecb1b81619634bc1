"""The terminal front-end: a line REPL on the same core as the web app, for machines
without a browser. Text streams as it is decoded, then a line of statistics.

    > teh cat sat on teh mat          (a line is the input; for a context bundle, a question)
    :use ID   :decoder NAME   :set max_new_tokens=32   :context FILE   :image FILE.npy
    :bundles  :profile        :help   :quit
"""

from __future__ import annotations

import ast
import queue
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import edgert

from .core import Studio, decoder_forms


class Session:
    """What the REPL remembers between lines: bundle, decoder, options, context."""

    def __init__(self, studio: Studio, out: TextIO) -> None:
        self.studio = studio
        self.out = out
        self.bundle = next(iter(studio.entries))
        self.decoder: str | None = None
        self.options: dict[str, Any] = {}
        self.context: str | None = None

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def facts(self) -> None:
        for entry in self.studio.entries.values():
            f = entry.facts()
            mark = "*" if entry.id == self.bundle else " "
            self.say(f"{mark} {f['id']:<24} {f['family']:<10} {f['profile'] or '?':<24} "
                     f"{f['precision'] or '?':<10} {f['size_bytes'] / 1e6:7.1f} MB")  # fmt: skip

    def command(self, line: str) -> bool:
        """Run a ``:command``; False when the REPL should end."""
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("q", "quit", "exit"):
            return False
        if name == "help":
            self.say(__doc__.split("\n\n", 1)[1].rstrip())
        elif name == "bundles":
            self.facts()
        elif name == "use":
            self.studio.entry(arg)
            self.bundle, self.context = arg, None
            self.say(f"using {arg} ({self.studio.page(arg)} page)")
        elif name == "decoder":
            forms = decoder_forms()
            if arg not in forms:
                raise edgert.UnknownNameError("decoder", arg, forms)
            self.decoder, self.options = arg, {}
            self.say(f"decoder {arg}; options: "
                     + ", ".join(f"{f['name']}={f['default']!r}" for f in forms[arg]))  # fmt: skip
        elif name == "set":
            key, _, value = arg.partition("=")
            try:
                self.options[key.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                self.options[key.strip()] = value.strip()
        elif name == "context":
            self.context = Path(arg).expanduser().read_text(encoding="utf-8")
            self.say(f"context: {len(self.context)} characters from {arg}")
        elif name == "image":
            self.classify(np.load(Path(arg).expanduser(), allow_pickle=False))
        elif name == "profile":
            report = self.studio.profile(self.bundle)
            for key in ("provider", "load_ms", "first_token_ms", "tokens_per_s", "latency_ms",
                        "peak_rss_mb"):  # fmt: skip
                if key in report:
                    self.say(f"  {key}: {report[key]}")
        else:
            raise edgert.InputError(f"unknown command :{name}", hint="type :help")
        return True

    def text(self, line: str) -> None:
        page = self.studio.page(self.bundle)
        if page == "image":
            raise edgert.InputError("this bundle classifies images",
                                    hint="give one with :image FILE.npy (values in [0, 1])")  # fmt: skip
        if page == "context" and self.context is None:
            raise edgert.InputError("this bundle answers questions about a context",
                                    hint="load one first with :context FILE")  # fmt: skip
        events: queue.Queue = queue.Queue()
        job = self.studio.start_text(self.bundle, events.put, text=line, decoder=self.decoder,
                                     options=self.options, context=self.context)  # fmt: skip
        try:
            while True:
                event = events.get()
                kind = event["event"]
                if kind == "queued":
                    self.say(f"[queued: {event['position']} ahead]")
                elif kind == "token":
                    self.say(event["text"], end="")
                elif kind == "done":
                    self.say()
                    self.say(stats_line(event["stats"], self.studio, self.bundle))
                    return
                elif kind == "error":
                    self.say()
                    self.say(f"error: {event['message']}" + (f"\nhint: {event['hint']}" if event.get("hint") else ""))  # fmt: skip
                    return
                elif kind == "cancelled":
                    self.say("\n[stopped]")
                    return
        except KeyboardInterrupt:
            job.cancel()
            job.finished.wait(30)
            self.say("\n[stopped]")

    def classify(self, image: np.ndarray) -> None:
        result = self.studio.classify(self.bundle, image)
        for row in result["top"]:
            self.say(f"  {row['label']:<16} {row['score']:6.1%}")
        self.say(f"  [{result['latency_ms']:.2f} ms on {result['provider']}]")


def stats_line(stats: dict[str, Any], studio: Studio, bundle: str) -> str:
    model = studio.model(bundle)
    parts = [f"{model.session_info.active}", f"profile {model.profile.id}",
             f"decoder {stats.get('decoder')}"]  # fmt: skip
    if stats.get("first_token_ms") is not None:
        parts.append(f"first token {stats['first_token_ms']:.1f} ms")
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']:.0f} tokens/s")
    if stats.get("decoder_calls") is not None:
        parts.append(f"{stats['decoder_calls']} decoder calls")
    if stats.get("acceptance_rate") is not None:
        parts.append(f"acceptance {stats['acceptance_rate']:.0%}")
    if "memory_cache_hit" in stats:
        hit = "cache hit" if stats["memory_cache_hit"] else "encoded"
        saved = f", saved {stats['memory_saved_ms']:.0f} ms" if "memory_saved_ms" in stats else ""
        parts.append(f"context memory {hit} ({stats.get('memory_ms', 0):.1f} ms{saved})")
    return "[" + ", ".join(parts) + "]"


def repl(studio: Studio, stdin: TextIO | None = None, out: TextIO | None = None) -> None:
    """Read lines until EOF or ``:quit``; errors are printed and the REPL goes on."""
    stdin = stdin or sys.stdin
    session = Session(studio, out or sys.stdout)
    session.facts()
    session.say(f"using {session.bundle}; :help lists the commands")
    while True:
        session.say("> ", end="")
        line = stdin.readline()
        if not line:
            session.say()
            return
        line = line.strip()
        if not line:
            continue
        try:
            if line.startswith(":"):
                if not session.command(line):
                    return
            else:
                session.text(line)
        except edgert.EdgertError as exc:
            session.say(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""))
        except OSError as exc:
            session.say(f"error: {exc}")
