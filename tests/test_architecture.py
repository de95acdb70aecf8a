"""docs/ARCHITECTURE.md stays true: every file it names exists, every package is on the map."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
TOP = ("collectors", "reports", "schema", "prometheus", "dashboards", "bench", "scenarios", "tests", "docs")


def _named_files() -> set[str]:
    """Every `dir/file.py`-like path in the page, as a path from the repository root."""
    names = set(re.findall(r"(?<![\w/.])((?:[a-z_]+/)*[a-z_]+\.py)\b", DOC.read_text()))
    out = set()
    for name in names:
        if "/" not in name:
            continue  # a bare module name is read beside its folder in a table cell
        first = name.split("/", 1)[0]
        out.add(name if first in ("loadgen", *TOP) else f"loadgen/{name}")
    return out


def test_every_file_the_map_names_exists() -> None:
    missing = sorted(p for p in _named_files() if not (ROOT / p).is_file())
    assert not missing, f"docs/ARCHITECTURE.md names files that do not exist: {missing}"
    assert len(_named_files()) > 30  # the map is read, not skipped


def test_every_package_is_on_the_map() -> None:
    text = DOC.read_text()
    packages = sorted(p.parent.name for p in (ROOT / "loadgen").glob("*/__init__.py"))
    absent = [p for p in packages if f"loadgen/{p}/" not in text and f"{p}/" not in text]
    assert not absent, f"packages missing from docs/ARCHITECTURE.md: {absent}"
    modules = sorted(p.name for p in (ROOT / "loadgen").glob("*.py") if not p.name.startswith("_"))
    unnamed = [m for m in modules if m not in text]
    assert not unnamed, f"top-level modules missing from docs/ARCHITECTURE.md: {unnamed}"
