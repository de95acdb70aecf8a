"""Where the bench reads and writes: its inputs next to run.py, everything it writes under bench/.work."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
WORK = BENCH / ".work"
LOGS = WORK / "logs"
VENV = WORK / "venv"
SPOOL = WORK / "spool"  # loadgen's --spool-dir: its run journals stay under bench/.work too
BENCH_DB = WORK / "bench.db"  # --db of every loadgen row outside the overhead part
OVERHEAD_DB = WORK / "overhead.db"
OUT = WORK / "out"  # the tools' own summaries (k6 JSON, Locust CSV/JSON, loadgen --summary-json)


def sqlite_url(path: Path) -> str:
    """sqlite:///FILE with an absolute FILE (hence four slashes)."""
    return "sqlite:///" + str(path.resolve())
