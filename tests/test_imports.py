"""Every project module imports on its own, and no project modules import each other in a circle.

- Each module of `jaxtrainer` and `torch_compat` is imported first thing in an interpreter where no
  project module has been imported: a circle that works in one import order only, or a module that
  needs another to be imported before it, fails there. One fresh interpreter imports the
  third-party packages the project imports (jax, torch, ...), then forks a child per module: the
  children start free of project modules, without paying jax's import 45 times.
- A static graph of every import of a project module, wherever it is written (inside functions too:
  a lazy import is still a dependency, one that only hides the circle until the function runs),
  must have no cycle. `from P import x` is an edge to the module P.x when there is one, else to P;
  the implicit import of a parent package (P.x imports P first) is not an edge, since Python makes
  it for every submodule. `importlib.import_module(...)` and `__import__(...)` count when their
  argument is a constant; an f-string counts as an edge to every module its constant start can
  name; a name known only at run time cannot be followed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jaxtrainer", "torch_compat")

# Run in a fresh interpreter: argv = [result file, third-party packages..., "--", modules...].
# Importing a package's __main__ runs its command line: it is asked for its --help, which exits 0.
FORKING_IMPORTER = """
import importlib, json, os, signal, sys, traceback
result_file, rest = sys.argv[1], sys.argv[2:]
split = rest.index("--")
for package in rest[:split]:
    try:
        importlib.import_module(package)
    except Exception:  # not installed, or broken: the modules that need it will say so
        pass
names = rest[split + 1 :]
preloaded = sorted(n for n in names if n in sys.modules)
if preloaded:
    sys.exit(f"project modules imported before the children fork: {preloaded}")
codes = {}
for name in names:
    pid = os.fork()
    if pid == 0:
        signal.alarm(120)  # a child that hangs dies instead of hanging the test
        try:
            if name.endswith(".__main__"):
                sys.argv = [name, "--help"]
            importlib.import_module(name)
        except SystemExit as e:
            os._exit(e.code if isinstance(e.code, int) else 1)
        except BaseException:
            print(f"=== import {name}", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    codes[name] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
with open(result_file, "w") as f:
    json.dump(codes, f)
"""


def project_modules() -> dict[str, Path]:
    """{dotted name: file} for every module of PACKAGES; a package is its __init__.py."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _package_of(name: str, path: Path) -> str:
    """The package that relative imports in module `name` start from."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _absolute(target: str, level: int, package: str) -> str:
    """The absolute name of `from {'.' * level}{target} import ...` written in `package`."""
    if level == 0:
        return target
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _package_argument(call: ast.Call, package: str) -> str | None:
    """import_module's `package` argument: a constant, or `__package__` (the caller's package)."""
    given = (
        call.args[1]
        if len(call.args) > 1
        else next((k.value for k in call.keywords if k.arg == "package"), None)
    )
    if isinstance(given, ast.Constant) and isinstance(given.value, str):
        return given.value
    return package if isinstance(given, ast.Name) and given.id == "__package__" else None


def _dynamic_targets(call: ast.Call, package: str, modules) -> set[str]:
    """The modules an `importlib.import_module(...)` or `__import__(...)` call can import (none for
    any other call)."""
    func = call.func
    callee = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if callee not in ("import_module", "__import__") or not call.args:
        return set()
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        text, exact = arg.value, True
    elif isinstance(arg, ast.JoinedStr):  # f"...": its constant start
        start = []
        for part in arg.values:
            if not isinstance(part, ast.Constant):
                break
            start.append(part.value)
        text, exact = "".join(start), False
    else:
        return set()  # a name known only at run time
    level = len(text) - len(text.lstrip("."))
    if level:
        base = _package_argument(call, package) if callee == "import_module" else None
        if base is None:
            return set()
        text = _absolute(text[level:], level, base)
    if exact:
        return {text}
    return {m for m in modules if m.startswith(text) and m != text} if text else set()


def imports_of(name: str, path: Path, modules) -> set[str]:
    """The project modules that module `name` imports, anywhere in its file."""
    package = _package_of(name, path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        elif isinstance(node, ast.Call):
            found.update(_dynamic_targets(node, package, modules))
    return {m for m in found if m in modules and m != name}


def third_party_packages(modules) -> list[str]:
    """The top-level packages outside the repository and the standard library that project modules
    import."""
    found = set()
    for path in modules.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    local = {name for name in found if (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file()}
    return sorted(found - set(PACKAGES) - local - set(sys.stdlib_module_names) - {"__future__"})


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: in each strongly connected component of more than one module (Tarjan's
    algorithm), a shortest cycle through each of its modules, as a list of modules that starts
    and ends with its smallest one; without repeats, sorted, so that the report is stable."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = set()
    for component in components:
        for start in component:
            cycle = _cycle_through(graph, component, start)[:-1]
            first = cycle.index(min(cycle))
            found.add(tuple(cycle[first:] + cycle[: first + 1]))
    return sorted(map(list, found))


def _cycle_through(graph, component: set[str], start: str) -> list[str]:
    """A shortest cycle from `start` back to it (breadth-first, inside the component)."""
    parents, frontier = {start: None}, [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start} in the strongly connected component {sorted(component)}")


# --- the checker on made-up graphs and files -------------------------------------------------------


def test_cycles_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    # one component a, b, c, d: a shortest cycle through each of its modules
    one_component = {"a": {"b", "c"}, "b": {"a"}, "c": {"d"}, "d": {"c", "a"}, "x": {"a"}}
    assert cycles(one_component) == [["a", "b", "a"], ["c", "d", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


FAKE = ("p", "p.a", "p.b", "p.sub", "p.sub.c", "p.sub.d", "q")


@pytest.fixture
def fake_modules(tmp_path):
    """{name: path} of a made-up tree: p/{__init__,a,b}.py, p/sub/{__init__,c,d}.py, q.py."""
    paths = {}
    for name in FAKE:
        parts = name.split(".")
        is_package = name in ("p", "p.sub")
        path = (
            tmp_path.joinpath(*parts, "__init__.py")
            if is_package
            else tmp_path.joinpath(*parts[:-1], parts[-1] + ".py")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        paths[name] = path
    return paths


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("p.sub.c", "import os, numpy.linalg", set()),
        ("p.sub.c", "import p.a", {"p.a"}),  # not p, the implicit parent
        ("p.sub.c", "import p.a as alias", {"p.a"}),
        ("p.sub.c", "from . import d", {"p.sub.d"}),
        ("p.sub.c", "from . import helper", {"p.sub"}),  # a name, not a module: the package
        ("p.sub.c", "from .d import thing", {"p.sub.d"}),
        ("p.sub.c", "from .. import b, sub", {"p.b", "p.sub"}),
        ("p.sub.c", "from ..a import x", {"p.a"}),
        ("p.sub.c", "from p import a, x", {"p.a", "p"}),
        ("p.sub.c", "from p.sub import c", set()),  # itself
        ("p.sub.c", "def lazy():\n    if True:\n        from q import y", {"q"}),
        ("p.sub.c", "class K:\n    def m(self):\n        import p.b", {"p.b"}),
        ("p.sub", "from . import d", {"p.sub.d"}),  # in a package's __init__, "." is the package
        ("p.sub", "from .. import a", {"p.a"}),
        ("p.sub.c", "import importlib\nimportlib.import_module('..b', __package__)", {"p.b"}),
        ("p.sub.c", "from importlib import import_module\nimport_module('.d', package='p.sub')", {"p.sub.d"}),
        ("p.sub.c", "import importlib\nimportlib.import_module('q')", {"q"}),
        ("p.sub.c", "import importlib\nimportlib.import_module(f'.{x}', __package__)", {"p.sub.d"}),
        (
            "p.sub.c",
            "import importlib\nimportlib.import_module(f'p.{x}')",
            {"p.a", "p.b", "p.sub", "p.sub.d"},
        ),
        ("p.sub.c", "__import__('p.b')", {"p.b"}),
        ("p.sub.c", "import importlib\nimportlib.import_module(name)\n__import__(name)", set()),
    ],
)
def test_imports_of_resolves_every_form(fake_modules, module, source, expected):
    fake_modules[module].write_text(source)
    assert imports_of(module, fake_modules[module], fake_modules) == expected


# --- the project ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter(tmp_path):
    modules = project_modules()
    result_file = tmp_path / "codes.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", FORKING_IMPORTER, str(result_file), *third_party_packages(modules), "--"]
    done = subprocess.run(
        [*command, *sorted(modules)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(result_file.read_text())
    assert sorted(codes) == sorted(modules)
    failed = sorted(name for name, code in codes.items() if code != 0)
    assert not failed, f"{failed} do not import alone:\n{done.stderr[-6000:]}"


def test_no_import_circles():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)
