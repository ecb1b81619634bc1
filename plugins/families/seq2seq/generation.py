"""A bundle's generation defaults, checked at load: each of the type and range the decoders
take, so that a damaged value is refused naming its field, not inside a decoder."""

from __future__ import annotations

import math
from typing import Any

from edgert.errors import BundleError

_ID, _IDS = "id", "ids"
# manifest "generation" key -> (kind, required, lowest value)
_GENERATION = {
    "max_input_length": (int, True, 1), "max_total_length": (int, True, 2),
    "max_new_tokens": (int, True, 1), "min_new_tokens": (int, False, 0),
    "num_beams": (int, False, 1), "no_repeat_ngram_size": (int, False, 0),
    "decoder_start_token_id": (_ID, False, 0), "pad_token_id": (_ID, False, 0),
    "forced_bos_token_id": (_ID, False, 0), "forced_eos_token_id": (_ID, False, 0),
    "eos_token_ids": (_IDS, True, 0), "suppress_token_ids": (_IDS, False, 0),
    "repetition_penalty": (float, False, 1e-9), "length_penalty": (float, False, None),
    "do_sample": (bool, False, None), "early_stopping": ("early", False, None),
}  # fmt: skip


def check_generation(
    manifest: dict[str, Any], where: Any, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The manifest's generation defaults, each of the type and range the decoders take
    (a damaged value is refused here, at load, naming the field, not inside a decoder).
    ``required``: optional keys this family's runtime needs (an encoder-decoder's
    ``decoder_start_token_id``; a decoder-decoder has none)."""
    defaults = manifest.get("generation")
    vocab = (manifest.get("layout") or {}).get("vocab")
    vocab = vocab if type(vocab) is int and vocab > 0 else 1 << 31

    def bad(key: str, value: Any, want: str) -> BundleError:
        return BundleError(f"the manifest of {where}: generation.{key} is {value!r}; {want}",
                           hint="re-export the bundle")  # fmt: skip

    if not isinstance(defaults, dict):
        raise bad("", defaults, "expected an object")
    for key, (kind, needed, low) in _GENERATION.items():
        value = defaults.get(key)
        if value is None:
            if needed or key in required:
                raise bad(key, value, "it is required")
            continue
        if kind in (int, _ID):
            top = vocab - 1 if kind == _ID else 1 << 24
            if type(value) is not int or not low <= value <= top:
                raise bad(key, value, f"expected an integer in {low}..{top}")
        elif kind == _IDS:
            if not isinstance(value, list) or not all(
                type(i) is int and 0 <= i < vocab for i in value
            ):
                raise bad(key, value, f"expected a list of token ids below {vocab}")
        elif kind is float:
            if (
                type(value) not in (int, float)
                or not math.isfinite(value)
                or (low is not None and value < low)
            ):
                raise bad(key, value, "expected a finite number" + (f" >= {low}" if low else ""))
        elif kind is bool and type(value) is not bool:
            raise bad(key, value, "expected true or false")
        elif kind == "early" and value not in (True, False, "never"):
            raise bad(key, value, 'expected true, false or "never"')
    return defaults
