"""The benchmarks are not run in CI, but they import the package's internals: a name they import
must still exist (bench/train_speed.py's `efficiency` imported BatchLoader from `visionstudy.data`
after it had moved to `visionstudy.data.loader`, and failed only when someone ran it)."""

from __future__ import annotations

import ast
import importlib

from tests.helpers import ROOT


def visionstudy_imports(path) -> list[tuple[int, str, str | None]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("visionstudy"):
            out += [(node.lineno, node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names if a.name.startswith("visionstudy")]
    return out


def resolves(module: str, name: str | None) -> bool:
    mod = importlib.import_module(module)
    if name is None or hasattr(mod, name):
        return True
    try:  # `from package import submodule`
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


def test_every_name_a_benchmark_imports_from_visionstudy_exists():
    scripts = sorted((ROOT / "bench").rglob("*.py"))
    found = [(s, *imp) for s in scripts for imp in visionstudy_imports(s)]
    assert len(found) >= 10  # the benchmarks do import the package
    missing = [f"{s.relative_to(ROOT)}:{line} {module} {name}" for s, line, module, name in found
               if not resolves(module, name)]
    assert not missing, missing
