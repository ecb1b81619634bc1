"""The runtime imports and runs a bundle with torch (and transformers) unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_runtime_runs_without_torch(tiny_bundle):
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "optimum", "onnx"):
            sys.modules[name] = None  # any import of them now raises ImportError
        import numpy as np
        import edgert
        model = edgert.load({str(tiny_bundle)!r})
        print(model.classify(np.ones((1, 5), np.float32), top_k=1)[0].label)
        from edgert.cli import main
        main(["devices", "list", "--json"])
        leaked = [m for m in ("torch", "transformers") if sys.modules.get(m) is not None]
        assert not leaked, leaked
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "owl"
