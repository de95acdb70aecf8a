"""Reports of stored runs: a self-contained HTML page and an executed Jupyter notebook.

Both read the run (and, with a baseline version, the comparison) from the results
store and draw the same matplotlib charts (:mod:`loadgen.reports.plots`):

- :func:`build_html` -> the page as bytes: one file, no script, no network, inline SVG;
- :func:`build_notebook` -> an nbformat v4 notebook whose cells load the run through
  loadgen's own API and draw the charts, executed so it opens with its outputs
  (needs ``pip install 'loadgen[notebook]'``);
- :func:`write_report` -> either, written to a path (what ``loadgen report`` and
  ``loadgen run --report`` call).

They open the store themselves (``asyncio.run``); inside a running event loop (a
notebook) use ``await load_run(store, ref)`` and ``await load_comparison(...)``.
Errors are :class:`~loadgen.errors.UsageError` (no such run, no baseline runs, bad
path, missing extra) or :class:`~loadgen.errors.RunError` (store unreachable,
notebook failed to execute).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from loadgen.errors import UsageError
from loadgen.judgement.tolerances import Tolerances, load_tolerances
from loadgen.store import DatabaseURL, Store, parse_db_url

from . import plots
from .data import ComparisonData, RunData, comparison_from_json, load_comparison, load_run
from .html import fmt_count, fmt_error_pct, fmt_ms, fmt_rps, render_html

__all__ = [
    "build_html",
    "build_notebook",
    "write_report",
    "load_report",
    "load_run",
    "load_comparison",
    "comparison_from_json",
    "render_html",
    "RunData",
    "ComparisonData",
    "plots",
    "fmt_ms",
    "fmt_count",
    "fmt_rps",
    "fmt_error_pct",
]

#: Regression tolerances, or the path of a thresholds file that sets them.
TolerancesArg = Tolerances | str | os.PathLike[str] | None


def _url(store_url: DatabaseURL | str | None) -> DatabaseURL:
    return store_url if isinstance(store_url, DatabaseURL) else parse_db_url(store_url)


def _tolerances(thresholds: TolerancesArg) -> Tolerances | None:
    """Tolerances as they are; a path is read as a thresholds file (``--thresholds-file``)."""
    if thresholds is None or isinstance(thresholds, Tolerances):
        return thresholds
    return load_tolerances(thresholds)


async def load_report(
    store: Store,
    run_ref: str,
    baseline_version: str | None = None,
    thresholds: Tolerances | None = None,
    baseline_runs: int | None = None,
) -> tuple[RunData, ComparisonData | None]:
    """The run and its comparison (computed against ``baseline_version``, or the one stored
    with the run when no baseline version is given), from an open store."""
    run = await load_run(store, run_ref)
    cmp = await load_comparison(store, run, baseline_version, thresholds, baseline_runs)
    return run, cmp


def _load(url: DatabaseURL, run_ref: str, baseline_version: str | None, thresholds: Tolerances | None,
          baseline_runs: int | None) -> tuple[RunData, ComparisonData | None]:
    from loadgen.store.history import with_store

    async def go(store: Store) -> tuple[RunData, ComparisonData | None]:
        return await load_report(store, run_ref, baseline_version, thresholds, baseline_runs)

    return with_store(url, go)


def build_html(
    store_url: DatabaseURL | str | None,
    run_ref: str,
    baseline_version: str | None = None,
    thresholds: TolerancesArg = None,
    baseline_runs: int | None = None,
) -> bytes:
    """The HTML report of a stored run (id, unique prefix or ``latest``), UTF-8.

    With ``baseline_version`` the run is compared with that version's last K completed
    runs (``thresholds``: :class:`~loadgen.judgement.tolerances.Tolerances` or a thresholds file;
    the comparison is not stored); without it, a comparison stored with the run (by
    ``loadgen run --baseline-version``) is shown if there is one.
    """
    url = _url(store_url)
    run, cmp = _load(url, run_ref, baseline_version, _tolerances(thresholds), baseline_runs)
    return render_html(run, cmp, store_shown=url.shown)


def build_notebook(
    store_url: DatabaseURL | str | None,
    run_ref: str,
    baseline_version: str | None = None,
    thresholds: TolerancesArg = None,
    baseline_runs: int | None = None,
    *,
    execute: bool = True,
    timeout_s: float = 180.0,
) -> Any:
    """An nbformat v4 notebook of the run (``nbformat.NotebookNode``), executed unless
    ``execute`` is False. The store URL appears in it without its password; when it has
    one, the notebook reads the real URL from ``LOADGEN_DB_URL`` when it runs."""
    from .notebook import build, require

    require()
    url = _url(store_url)
    th = _tolerances(thresholds)
    run, cmp = _load(url, run_ref, baseline_version, th, baseline_runs)
    return build(url, run, cmp, baseline_version=baseline_version, thresholds=th, baseline_runs=baseline_runs,
                 execute=execute, timeout_s=timeout_s)


def write_report(
    path: str | os.PathLike[str],
    store_url: DatabaseURL | str | None,
    run_ref: str,
    *,
    format: Literal["html", "notebook"] = "html",
    baseline_version: str | None = None,
    thresholds: TolerancesArg = None,
    baseline_runs: int | None = None,
) -> Path:
    """Build the report and write it to ``path``; the path written."""
    if format not in ("html", "notebook"):
        raise UsageError(f"--format {format!r} is not html or notebook")
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"report path {out} is a directory; name a file, e.g. {out / 'report.html'}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write the report to {out}: the folder {out.parent} does not exist")
    if format == "html":
        data = build_html(store_url, run_ref, baseline_version, thresholds, baseline_runs)
    else:
        import nbformat

        nb = build_notebook(store_url, run_ref, baseline_version, thresholds, baseline_runs)
        data = nbformat.writes(nb).encode("utf-8")
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out}: {exc.strerror}") from None
    return out
