"""Layering: the core never imports a framework or h5py; adapters depend on the core only.

Two proofs: the imports of every core module are parsed with ``ast``, and a
fresh interpreter that imports weightshare and clusters an array is checked
for what ended up in ``sys.modules``.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "weightshare"
FORBIDDEN = ("h5py", "tensorflow", "keras", "tf_keras", "torch", "jax", "hypothesis", "sklearn",
             "matplotlib")
# the core: algorithms on arrays (the adapters live in weightshare/_io and weightshare/files.py)
CORE = ["__init__.py", "cluster.py", "_auto.py", "_optimal.py", "_lloyd.py", "_init.py",
        "_points.py", "_validation.py", "errors.py", "_json.py", "_text.py"]
OPTIONAL_CORE = ["prune.py", "encode.py", "_bitpack.py", "_huffman.py"]
ALLOWED_TOP = {"numpy", "scipy", "weightshare"} | set(sys.stdlib_module_names)


def _top_level_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", CORE + [n for n in OPTIONAL_CORE if (PKG / n).exists()])
def test_core_module_imports_only_numpy_scipy_stdlib(name):
    imported = _top_level_imports(PKG / name)
    assert imported <= ALLOWED_TOP, f"{name} imports {sorted(imported - ALLOWED_TOP)}"


def test_no_module_in_the_package_imports_a_framework():
    for path in PKG.rglob("*.py"):
        imported = _top_level_imports(path)
        bad = imported & {"tensorflow", "keras", "tf_keras", "torch", "jax"}
        assert not bad, f"{path.relative_to(PKG.parent)} imports {sorted(bad)}"


def test_importing_and_clustering_loads_no_framework_and_no_h5py():
    code = ("import sys, numpy as np, weightshare\n"
            "weightshare.cluster(np.linspace(-1, 1, 100), 4)\n"
            "weightshare.init_centroids(np.linspace(-1, 1, 100), 4)\n"
            f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the core loaded: {out.stdout.strip()}"
