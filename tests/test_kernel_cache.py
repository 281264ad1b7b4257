"""The compositing kernels' on-disk cache (render/_kernel_cache.py): one entry per kernel variant, the same key in
every process (so a new process loads instead of compiling), and a key that follows the package's sources."""

from __future__ import annotations

import json
import subprocess
import sys

from splatup.render import _kernel_cache as KC
from splatup.render import composite as K
from splatup.render import composite_backward as KB

KEYS_SNIPPET = """
import json
from splatup.render import composite as K, composite_backward as KB
from numba.core import types
sig = (types.int64,)
keys = {f"{name}{v}": repr(d._cache._index_key(sig, d.targetctx.codegen()))
        for name, table in (("forward", K._FORWARD), ("backward", KB._BACKWARD)) for v, d in table.items()}
print(json.dumps(keys))
"""


def _keys_here() -> dict[str, str]:
    from numba.core import types

    sig = (types.int64,)
    return {f"{name}{v}": repr(d._cache._index_key(sig, d.targetctx.codegen()))
            for name, table in (("forward", K._FORWARD), ("backward", KB._BACKWARD)) for v, d in table.items()}


def test_every_variant_has_its_own_key():
    keys = _keys_here()
    assert len(set(keys.values())) == len(keys) == 6, keys


def test_the_key_is_the_same_in_another_process():
    r = subprocess.run([sys.executable, "-c", KEYS_SNIPPET], capture_output=True, text=True, check=True)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == _keys_here()


def test_the_stamp_covers_every_source_file_of_the_package(tmp_path, monkeypatch):
    before = KC.sources_digest()
    pkg = tmp_path / "render"
    pkg.mkdir()
    for p in KC._PACKAGE.glob("*.py"):
        (pkg / p.name).write_bytes(p.read_bytes())
    monkeypatch.setattr(KC, "_PACKAGE", pkg)
    KC.sources_digest.cache_clear()
    try:
        assert KC.sources_digest() == before
        (pkg / "lanes.py").write_text((pkg / "lanes.py").read_text() + "\n# edited\n")
        KC.sources_digest.cache_clear()
        assert KC.sources_digest() != before
    finally:
        KC.sources_digest.cache_clear()
