"""The kernel's imports point one way (docs/architecture.md, "Modules and the
direction of their imports"): no circle among the runtime imports of
``hewitt._runtime``, and nothing imported from the layers built on it."""

from __future__ import annotations

import ast
from pathlib import Path

KERNEL = Path(__file__).resolve().parents[2] / "src" / "hewitt" / "_runtime"


def runtime_imports(path: Path) -> set[str]:
    """Kernel modules that ``path`` imports when it runs (module-level imports,
    not those under ``if TYPE_CHECKING:``, which only annotations use)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [a.name for a in node.names])
    return found


def test_the_kernel_runtime_imports_form_no_circle() -> None:
    graph = {path.stem: runtime_imports(path) for path in KERNEL.glob("*.py")}
    layers: list[list[str]] = []
    remaining = dict(graph)
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps & remaining.keys())
        assert ready, f"an import circle among {sorted(remaining)}"
        layers.append(ready)
        for name in ready:
            del remaining[name]
    assert layers[-1] == ["_system"]  # the system is the top of the kernel


def test_the_kernel_imports_nothing_built_on_it() -> None:
    for path in KERNEL.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level != 2, f"{path.name} imports from the layers above the kernel"
                assert not (node.module or "").startswith("hewitt"), path.name
