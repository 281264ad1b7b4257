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




VARIANT_GRADIENTS = """
import sys, torch, splatup as su
from splatup.viewpoints import orbit_camera
scene = su.load_scene(sys.argv[1])
cam = orbit_camera(scene, 64, 48)
VARIANTS = {"plain": False, "first": "first", "second": True}


def grad(d):
    params = {k: t.detach().clone().requires_grad_(True) for k, t in scene.tensors().items()}
    su.rasterize(type(scene)(**params), cam, derivatives=d).color.sum().backward()
    return params["means"].grad


names = sys.argv[2].split(",")
g = {k: grad(VARIANTS[k]) for k in names}
print("SAME", all(torch.allclose(g[names[0]], g[k], rtol=1e-4, atol=1e-6) for k in names))
"""


def test_variants_cached_by_different_processes_run_together(tmp_path, shared_data):
    """Each compositing variant compiled and cached by its own process (separate commands, pytest-xdist or Dask
    workers on a cold cache), then all three loaded from that cache by one process: the colour gradients of the
    three variants agree and nothing crashes. numba names machine code after the qualified name and a per-process
    counter; before ``variant_named`` the closures of different variants got one symbol name this way, and this
    sequence ended in "corrupted size vs. prev_size" (heap corruption) in the last process."""
    import os

    spot = str(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    for names in ("second", "plain", "first", "second,first,plain"):
        r = subprocess.run([sys.executable, "-c", VARIANT_GRADIENTS, spot, names], capture_output=True, text=True,
                           env=env, timeout=600)
        assert r.returncode == 0 and "SAME True" in r.stdout, (names, r.returncode, r.stdout, r.stderr[-2000:])
    assert len(list((tmp_path / "cache").rglob("*backward_v*.nbi"))) == 3  # each variant has its own index
