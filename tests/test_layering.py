"""Layering, proven by walking the package: which module may import what.

Every ``.py`` file under ``weightshare/`` is parsed with ``ast`` (nothing is
listed by hand: a module that is added or renamed is checked as it is) and
placed in a layer by its folder (:data:`LAYERS`, lowest first). The rules:

- arrows point down: a module imports only modules of its own layer or below;
- third-party imports: NumPy everywhere, h5py only under ``_io/``, matplotlib
  only in ``plot.py``, Hypothesis only in ``testing/``, no framework anywhere but
  ``weightshare/keras.py`` (Keras callbacks; it imports ``keras`` or ``tf_keras``,
  and nothing imports it: not ``weightshare/__init__.py``, not its lazy table, no
  other module); the standard library's ``zipfile`` is a file format too, so only
  ``_io/``;
- the CLI and ``weightshare.keras`` import only public names of the package;
- no import circles (imports inside functions and the lazy table of
  ``weightshare/__init__.py`` count as arrows), and at most :data:`MAX_DEPTH`
  levels (arrows) from ``weightshare.__main__`` to a leaf, counted between
  the units of the architecture: each folder (``_io``, ``cli``, ...) is one
  unit, each top-level module another;
- the top level of ``weightshare/`` holds public modules only.

A fresh interpreter that imports weightshare and clusters an array is also
checked for what ended up in ``sys.modules``.
"""

import ast
import functools
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "weightshare"
FRAMEWORKS = {"tensorflow", "keras", "tf_keras", "torch", "jax", "flax"}
STDLIB = set(sys.stdlib_module_names)

#: layers, lowest first: (name, module-name prefixes, third-party modules it may import)
LAYERS = (
    ("base", ("weightshare.errors", "weightshare._base", "weightshare.examples"), {"numpy"}),
    ("core", ("weightshare._kmeans", "weightshare._codec", "weightshare.cluster",
              "weightshare.prune", "weightshare.encode", "weightshare.structure",
              "weightshare.budget"), {"numpy"}),
    ("keras vocabulary", ("weightshare._keras",), {"numpy"}),
    ("forward kernels", ("weightshare._forward", "weightshare.forward"), {"numpy"}),
    ("file adapters", ("weightshare._io",), {"numpy", "h5py"}),
    ("jobs", ("weightshare.files", "weightshare._jobs", "weightshare._remove",
              "weightshare.remove", "weightshare._calibrate"), {"numpy"}),
    ("measurement", ("weightshare.report", "weightshare.compare", "weightshare.plot"),
     {"numpy", "matplotlib"}),
    ("faces", ("weightshare.testing", "weightshare.cli", "weightshare.__main__",
               "weightshare.__init__", "weightshare.keras"), {"numpy", "hypothesis"}),
)
#: the one module that may import a framework, and which ones (only when a user imports it)
FRAMEWORK_HOMES = {"weightshare.keras": {"keras", "tf_keras"}}
ONLY_IN = {"h5py": ("weightshare._io",), "zipfile": ("weightshare._io",),
           "matplotlib": ("weightshare.plot",), "hypothesis": ("weightshare.testing",)}
MAX_DEPTH = 7
#: where an optional package may be imported at the top of a module
TOP_LEVEL_OPTIONAL = ("weightshare._io", "weightshare.testing")


def _name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _under(module, prefix):
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module):
    key = "weightshare.__init__" if module == "weightshare" else module
    for i, (_, prefixes, _) in enumerate(LAYERS):
        if any(_under(key, p) for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS")


@functools.lru_cache(maxsize=None)
def imports_of(module):
    """(package modules imported, top-level third-party/stdlib names, public-only flag list)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    inner, outer, names = set(), set(), []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "weightshare":
                    inner.add(_existing(alias.name))
                else:
                    outer.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "weightshare":
                target = node.module
            else:
                outer.add((node.module or "").split(".")[0])
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                inner.add(sub if sub in MODULES else _existing(target))
                names.append((target, alias.name))
    if module == "weightshare":          # the lazy table is a set of arrows too
        import weightshare
        inner.update(f"weightshare.{m}" for m in weightshare._LAZY.values())
    inner.discard(module)
    return frozenset(inner), frozenset(outer), tuple(names)


def _existing(name):
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def test_the_walk_sees_every_folder_of_the_package():
    folders = {p.parent.name for p in MODULES.values()}
    assert {"weightshare", "_kmeans", "_codec", "_io", "_keras", "cli", "testing"} <= folders
    assert len(MODULES) > 40


@pytest.mark.parametrize("module", sorted(MODULES))
def test_arrows_point_down(module):
    inner, _, _ = imports_of(module)
    up = sorted(m for m in inner if layer_of(m) > layer_of(module))
    assert not up, f"{module} ({LAYERS[layer_of(module)][0]}) imports from higher layers: {up}"


def third_party_violations(module, outer):
    """What is wrong with `module` importing the top-level names `outer` (empty: nothing)."""
    frameworks = FRAMEWORK_HOMES.get(module, set())
    wrong = [f"imports a framework: {sorted(outer & FRAMEWORKS - frameworks)}"] \
        if outer & FRAMEWORKS - frameworks else []
    allowed = LAYERS[layer_of(module)][2] | STDLIB | frameworks
    if not outer <= allowed:
        wrong.append(f"imports {sorted(outer - allowed)}")
    wrong += [f"imports {name}" for name, homes in ONLY_IN.items()
              if name in outer and not any(_under(module, h) for h in homes)]
    return wrong


@pytest.mark.parametrize("module", sorted(MODULES))
def test_third_party_imports_stay_in_their_layer(module):
    _, outer, _ = imports_of(module)
    wrong = third_party_violations(module, outer)
    assert not wrong, f"{module}: {'; '.join(wrong)}"


@pytest.mark.parametrize("module, outer", [
    ("weightshare.files", {"numpy", "keras"}), ("weightshare.structure", {"tensorflow"}),
    ("weightshare.cli._prune", {"tf_keras"}), ("weightshare.keras", {"torch"}),
    ("weightshare.keras", {"tensorflow"}), ("weightshare.keras", {"h5py"})])
def test_the_rule_refuses_a_framework_anywhere_but_in_its_home(module, outer):
    assert third_party_violations(module, outer)


def test_weightshare_keras_imports_keras_and_only_a_user_imports_it():
    assert third_party_violations("weightshare.keras", {"numpy", "keras", "tf_keras", "os"}) == []
    assert {"keras", "tf_keras"} <= imports_of("weightshare.keras")[1]
    import weightshare
    assert "keras" not in weightshare._LAZY.values() and "keras" not in weightshare.__all__
    importers = sorted(m for m in MODULES if "weightshare.keras" in imports_of(m)[0])
    assert importers == [], f"{importers} import weightshare.keras"


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                          if not any(_under(m, h) for h in TOP_LEVEL_OPTIONAL)))
def test_optional_packages_are_imported_inside_functions(module):
    """Outside the adapters and the testing kit, a module's body imports NumPy and the
    standard library only: h5py and matplotlib load when a function needs them."""
    tree = ast.parse(MODULES[module].read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top.add(node.module.split(".")[0])
    allowed = {"numpy", "weightshare"} | STDLIB
    assert top <= allowed, f"{module} imports {sorted(top - allowed)} at top level"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _under(m, "weightshare.cli")
                                          or m == "weightshare.keras"))
def test_the_cli_uses_only_public_names(module):
    _, _, names = imports_of(module)
    for target, name in names:
        if _under(target, "weightshare.cli"):
            continue
        private = [p for p in target.split(".")[1:] + [name]
                   if p.startswith("_") and not p.endswith("__")]
        assert not private, f"{module} imports {name!r} from {target}"


def _graph():
    return {m: imports_of(m)[0] for m in MODULES}


def test_no_import_circles():
    graph, state, stack = _graph(), {}, []

    def visit(m):                       # iterative DFS colouring; a grey hit is a circle
        todo = [(m, iter(sorted(graph[m])))]
        state[m] = "grey"
        stack.append(m)
        while todo:
            node, children = todo[-1]
            for child in children:
                if state.get(child) == "grey":
                    circle = stack[stack.index(child):] + [child]
                    raise AssertionError("import circle: " + " -> ".join(circle))
                if child not in state:
                    state[child] = "grey"
                    stack.append(child)
                    todo.append((child, iter(sorted(graph[child]))))
                    break
            else:
                todo.pop()
                state[stack.pop()] = "black"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def unit_of(module):
    """The unit of the architecture a module belongs to: its folder under weightshare/, or itself."""
    parts = module.split(".")
    if len(parts) > 2 and (MODULES[module].parent != PKG):
        return ".".join(parts[:2])
    return module


def longest_chain(start="weightshare.__main__"):
    """The longest chain of arrows between units (folders, top-level modules) from `start`."""
    graph = {}
    for m, targets in _graph().items():
        graph.setdefault(unit_of(m), set()).update(unit_of(t) for t in targets)
    for unit, targets in graph.items():
        targets.discard(unit)

    @functools.lru_cache(maxsize=None)
    def chain(unit):
        return (unit,) + max((chain(t) for t in graph[unit]), key=len, default=())

    return chain(start)


def test_at_most_seven_levels_from_main_to_a_leaf():
    chain = longest_chain()
    assert len(chain) - 1 <= MAX_DEPTH, " -> ".join(chain)


def test_the_top_level_holds_public_modules_only():
    top = [p.name for p in PKG.glob("*.py")]
    private = [n for n in top if n.startswith("_") and n not in ("__init__.py", "__main__.py")]
    assert not private, f"private modules at the top level: {private} (move them into a folder)"


def test_the_tests_mirror_the_package():
    """Tests of a package folder live in the tests/ folder of the same name; tests of the
    top-level modules and of the whole package (layering, docs, hardening) at the top."""
    tests = ROOT / "tests"
    folders = {p.parent.relative_to(tests).as_posix() for p in tests.rglob("test_*.py")} - {"."}
    package = {p.relative_to(PKG).as_posix() for p in PKG.rglob("*") if p.is_dir()
               and (p / "__init__.py").exists()}
    assert folders <= package, f"test folders with no package folder: {sorted(folders - package)}"
    assert {"_kmeans", "_io", "cli"} <= folders


def test_importing_and_clustering_loads_no_framework_and_no_h5py():
    forbidden = sorted(FRAMEWORKS | {"h5py", "hypothesis", "sklearn", "matplotlib"})
    code = ("import sys, numpy as np, weightshare\n"
            "weightshare.cluster(np.linspace(-1, 1, 100), 4)\n"
            "weightshare.init_centroids(np.linspace(-1, 1, 100), 4)\n"
            "weightshare.structure_of(np.linspace(-1, 1, 100)).project(np.ones(100))\n"
            f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the core loaded: {out.stdout.strip()}"
