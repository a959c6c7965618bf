"""Every public function, class and method of the packages says what it is for (issue 21 item 9):
a docstring of its own, or one it inherits from the method it overrides."""

import importlib
import inspect
import pkgutil

import pytest

import benchmarks
import jaxtrainer
import torch_compat


def modules():
    for package in (jaxtrainer, torch_compat, benchmarks):
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            yield info.name


def undocumented(module) -> list:
    """Public functions and classes defined in `module`, and their public methods, with no docstring
    (a dataclass's or NamedTuple's generated one, its signature, does not count)."""

    def missing(obj, name) -> bool:
        doc = inspect.getdoc(obj)
        return not doc or doc.startswith(f"{name}(")

    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) and missing(obj, name):
            found.append(name)
        if inspect.isclass(obj):
            if missing(obj, name):
                found.append(name)
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                if not inspect.getdoc(getattr(obj, attr, member)):
                    found.append(f"{name}.{attr}")
    return found


@pytest.mark.parametrize("name", [m for m in modules() if not m.endswith("__main__")])
def test_every_public_function_and_class_has_a_docstring(name):
    assert undocumented(importlib.import_module(name)) == []


def test_the_walk_finds_an_undocumented_function():
    module = type(inspect)("probe")
    exec("def f(): pass\nclass C:\n    'Documented.'\n    def m(self): pass", vars(module))
    assert undocumented(module) == ["f", "C.m"]
