"""``edgert run``: run a bundle on inputs and say what ran where."""

from __future__ import annotations

from pathlib import Path

import click

from edgert.cli.options import (
    allow_fallback_option,
    decoder_options,
    decoder_options_option,
    draft_option,
    json_option,
)

# generate() arguments that run sets from its own flags, not decoder options.
RESERVED = {"decoder": "--decoder", "stop": "--stop", "truncate": "--truncate",
            "text": "the TEXT argument", "input_ids": "the TEXT argument",
            "context": "--context", "context_policy": "--context-policy"}  # fmt: skip


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("text", required=False)
@click.option("--input", "-i", "input_path", type=click.Path(path_type=Path),
              help="Classifiers: an .npy/.npz batch or an image file.")  # fmt: skip
@click.option("--top-k", default=3, show_default=True, help="Classifiers: classes per input.")
@click.option("--decoder", default=None,
              help="Text: decoding plugin [default: the checkpoint's own: beam when its "
              "generation config keeps several beams, else greedy].")  # fmt: skip
@click.option("--max-new-tokens", type=int, help="Text: cap on generated tokens.")
@click.option("--num-beams", type=int, help="Text: beams (with --decoder beam).")
@click.option("--temperature", type=float, help="Text: sampling temperature.")
@click.option("--seed", type=int, help="Text: sampling seed.")
@draft_option
@click.option("--stop", multiple=True, help="Text: stop at this string (repeatable).")
@click.option("--truncate", is_flag=True, help="Text: cut inputs longer than the profile allows.")
@decoder_options_option
@click.option(
    "--context",
    "context_path",
    type=click.Path(path_type=Path),
    help="Decoder-decoder models: file with the long context the question is about.",
)
@click.option(
    "--context-policy",
    type=click.Choice(["reject", "chunk"]),
    default="reject",
    show_default=True,
    help="Contexts longer than the context encoder's window.",
)
@click.option("--stats", is_flag=True, help="Text: print timing and decoder statistics.")
@click.option("--device", "-d", help="Run with this profile's providers instead of the bundle's.")
@click.option("--threads", type=int, help="Intra-op threads (default: the profile's).")
@allow_fallback_option
@json_option
def run(bundle: Path, text: str | None, input_path: Path | None, top_k: int, decoder: str,
        max_new_tokens, num_beams, temperature, seed, draft, stop, truncate, extra, context_path,
        context_policy, stats, device, threads, allow_fallback, as_json) -> None:  # fmt: skip
    """Run BUNDLE: classify inputs, or generate from TEXT ("-" reads standard input).

    \b
    Examples:
      edgert run digits-bundle --input batch.npy
      edgert run speller-bundle "teh cat sat in teh garden" --stats
      edgert run speller-bundle "some text" --decoder beam --num-beams 4
      edgert run speller-bundle "teh cat" --decoder aggressive --stats
      edgert run speller-bundle "teh cat" --decoder speculative --draft speller-draft
      edgert run speller-bundle "teh cat" --decoder speculative --draft speller-draft \\
          -O sample=true --temperature 0.8 --seed 1
      echo "some text" | edgert run speller-bundle - --decoder sampling --seed 1
      edgert run qa-bundle "Who wrote the report?" --context report.txt --stats
    """
    from click.core import ParameterSource

    import edgert
    from edgert.catalog import get_catalog
    from edgert.families import RunRequest

    ctx = click.get_current_context()
    given = frozenset(  # the long flags given, for the family to refuse what it cannot use
        max(p.opts, key=len)
        for p in ctx.command.params
        if isinstance(p, click.Option)
        and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE
    )
    model = edgert.load(bundle, device=device, allow_fallback=allow_fallback, threads=threads)
    options = {k: v for k, v in (("max_new_tokens", max_new_tokens), ("num_beams", num_beams),
                                 ("temperature", temperature), ("seed", seed),
                                 ("draft", str(draft) if draft else None)) if v is not None}  # fmt: skip
    options.update(decoder_options(extra, RESERVED))
    request = RunRequest(
        bundle=str(bundle), text=text, input_path=str(input_path) if input_path else None,
        top_k=top_k, decoder=decoder, options=options, stop=tuple(stop), truncate=truncate,
        context_path=str(context_path) if context_path else None,
        context_policy=context_policy, stats=stats, as_json=as_json, given=given,
    )  # fmt: skip
    get_catalog().families.get(model.bundle.family).cli().run(model, request)
