"""The type stubs match the native module, so editors complete what really exists."""

from __future__ import annotations

import ast
import inspect
import pathlib

import remotemedia
from remotemedia import _native

PACKAGE = pathlib.Path(remotemedia.__file__).parent
STUBS = PACKAGE / "_native.pyi"


def stub_names() -> dict[str, set[str]]:
    """Top-level names of the stub file; for classes, their public members."""
    tree = ast.parse(STUBS.read_text())
    names: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
            }
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
    return names


def test_the_package_ships_its_stubs_and_py_typed():
    assert STUBS.is_file()
    assert (PACKAGE / "py.typed").is_file()


def test_every_native_class_and_function_has_a_stub_and_the_reverse():
    stubs = stub_names()
    native = {
        name
        for name, value in vars(_native).items()
        if not name.startswith("_") and (inspect.isclass(value) or callable(value))
    }
    assert native == set(stubs), "stubs and native module differ"


def test_every_stubbed_member_exists_and_every_public_member_is_stubbed():
    for name, members in stub_names().items():
        value = getattr(_native, name)
        if not inspect.isclass(value):
            continue
        public = {m for m in dir(value) if not m.startswith("_")}
        assert members == public, f"{name}: stubs {sorted(members)} vs runtime {sorted(public)}"


def test_the_package_exports_what_all_promises():
    for name in remotemedia.__all__:
        assert hasattr(remotemedia, name), name
