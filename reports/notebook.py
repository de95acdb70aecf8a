"""The notebook report: nbformat v4 cells that load the run from the store through
loadgen's own API and draw the report's charts with :mod:`loadgen.reports.plots`,
executed with nbclient so the file opens with its outputs in place.

The store URL is written into the notebook without its password
(:func:`loadgen.redact.redact`); when it had one, the notebook takes the real URL
from ``LOADGEN_DB_URL`` when it runs (and is executed here with that variable set).
"""

from __future__ import annotations

import os
import pprint
from typing import Any

from loadgen.errors import RunError, UsageError
from loadgen.judgement.tolerances import Tolerances
from loadgen.store import DatabaseURL

from . import plots
from .data import ComparisonData, RunData
from .html import verdict

__all__ = ["require", "build", "NOTEBOOK_CSS"]

_INSTALL = "pip install 'loadgen[notebook]'"


def require() -> None:
    """UsageError naming the extra to install when nbformat, nbclient or ipykernel is missing."""
    missing = []
    for mod in ("nbformat", "nbclient", "ipykernel"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise UsageError(f"the notebook report needs {', '.join(missing)}: {_INSTALL}")


#: The notebook's tables are the HTML report's, styled only inside their own element.
NOTEBOOK_CSS = """<style>
.loadgen-report { font-variant-numeric: tabular-nums; }
.loadgen-report table { border-collapse: collapse; margin: 6px 0 14px; }
.loadgen-report th, .loadgen-report td { padding: 3px 9px; text-align: right; border-bottom: 1px solid #e4e7eb; }
.loadgen-report th:first-child, .loadgen-report td:first-child { text-align: left; }
.loadgen-report tr.total th, .loadgen-report tr.total td { font-weight: 700; }
.loadgen-report tr.v-regression td, .loadgen-report tr.regression td,
.loadgen-report tr.regression th { background: #fdecea; color: #c62828; }
.loadgen-report .pill.regression, .loadgen-report .pill.fail { background: #c62828; color: #fff; padding: 0 6px; }
.loadgen-report .verdict { display: inline-block; font-weight: 700; font-size: 1.3em; padding: 2px 12px;
  border: 2px solid currentColor; border-radius: 4px; }
.loadgen-report .verdict.pass { color: #2e7d32; }
.loadgen-report .verdict.fail { color: #fff; background: #c62828; border-color: #c62828; }
.loadgen-report .verdict.warn { color: #9a5b00; }
.loadgen-report .note, .loadgen-report .range { color: #616e7c; font-size: 0.9em; }
.loadgen-report dl.meta { display: grid; grid-template-columns: repeat(3, 1fr); gap: 4px 20px; }
.loadgen-report dl.meta dt { font-size: 0.8em; color: #616e7c; text-transform: uppercase; }
.loadgen-report dl.meta dd { margin: 0; }
.loadgen-report .tiles { display: flex; flex-wrap: wrap; gap: 18px; margin: 8px 0; }
.loadgen-report .tile .v { font-size: 1.4em; font-weight: 650; }
.loadgen-report .tile .u, .loadgen-report .tile .k { color: #616e7c; font-size: 0.85em; margin-left: 3px; }
.loadgen-report .tile.bad .v, .loadgen-report td.bad { color: #c62828; }
.loadgen-report ul.details, .loadgen-report ul.warnings { margin: 4px 0; }
.loadgen-report li.fail { color: #c62828; font-weight: 600; }
</style>"""


def _shown_url(url: DatabaseURL) -> str:
    """The URL the notebook shows: redacted, and for SQLite an absolute path (the notebook may be
    opened from anywhere)."""
    if url.kind == "sqlite" and url.path is not None:
        return "sqlite:///" + os.path.abspath(url.path)
    return url.shown


def build(
    url: DatabaseURL,
    run: RunData,
    cmp: ComparisonData | None,
    *,
    baseline_version: str | None,
    thresholds: Tolerances | None,
    baseline_runs: int | None,
    execute: bool = True,
    timeout_s: float = 180.0,
) -> Any:
    require()
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    shown = _shown_url(url)
    r = run.run
    word = verdict(run, cmp)[0]
    # The comparison as reported: computed against the version asked for, else the stored one.
    th_literal = "None" if thresholds is None else pprint.pformat(thresholds.to_json(), width=100, sort_dicts=False)
    cells = [
        new_markdown_cell(
            f"# {word} · {r.get('app_version') or 'unversioned'} · {r.get('scenario') or 'ad hoc'}\n\n"
            f"Load test report of run `{run.id}` ({r.get('test_type')} test, {r.get('status')}), built by"
            " `loadgen report`. The cells below read the run from the results store with loadgen's own API and"
            " draw it with `loadgen.reports.plots`, the charts of the HTML report. Change the parameters and"
            " re-run all cells to report on another run."
        ),
        new_code_cell(
            "# Parameters. STORE_URL is shown without its password; when it has one (***), the real URL\n"
            "# is read from the LOADGEN_DB_URL environment variable.\n"
            f"STORE_URL = {shown!r}\n"
            f"RUN_ID = {run.id!r}\n"
            f"# The version to compare with (None: the comparison stored with the run, if any).\n"
            f"BASELINE_VERSION = {baseline_version!r}\n"
            f"# Regression thresholds (None: the defaults), as in a thresholds file.\n"
            f"THRESHOLDS = {th_literal}\n"
            f"BASELINE_RUNS = {baseline_runs!r}"
        ),
        new_code_cell(
            "%matplotlib inline\n"
            "import os\n\n"
            "from IPython.display import HTML, display\n\n"
            "from loadgen.judgement.tolerances import Tolerances\n"
            "from loadgen.reports import html, load_report, plots\n"
            "from loadgen.reports.notebook import NOTEBOOK_CSS\n"
            "from loadgen.redact import redact\nfrom loadgen.store import open_store\n\n"
            "db_url = STORE_URL\n"
            'if "***" in STORE_URL:\n'
            '    db_url = os.environ.get("LOADGEN_DB_URL", "")\n'
            "    if redact(db_url) != STORE_URL:\n"
            '        raise RuntimeError(f"set LOADGEN_DB_URL to the URL of {STORE_URL} with its password")\n\n'
            "store = await open_store(db_url)\n"
            "try:\n"
            "    run, comparison = await load_report(\n"
            "        store, RUN_ID, BASELINE_VERSION, Tolerances(**THRESHOLDS) if THRESHOLDS else None, BASELINE_RUNS\n"
            "    )\n"
            "finally:\n"
            "    await store.close()\n"
            "print(f\"run {run.id}: {run.run['requests'] or 0:,} requests in {run.duration_s:.1f} s\")"
        ),
        new_markdown_cell("## Summary"),
        new_code_cell(
            "display(HTML(NOTEBOOK_CSS + '<div class=\"loadgen-report\">' + html.header_html(run, comparison)\n"
            "             + html.figures_html(run) + html.meta_html(run) + html.endpoint_table_html(run)\n"
            "             + html.thresholds_html(run) + '</div>'))"
        ),
    ]
    if cmp is not None:
        cells.append(new_markdown_cell("## Regression check"))
        cells.append(new_code_cell(
            "display(HTML(NOTEBOOK_CSS + '<div class=\"loadgen-report\">' + html.comparison_html(comparison)"
            " + '</div>'))"
        ))
        for chart in plots.comparison_charts(cmp):
            cells.append(new_markdown_cell(f"### {chart.title}\n\n{chart.caption}"))
            cells.append(new_code_cell(chart.call))
    for chart in plots.run_charts(run):
        cells.append(new_markdown_cell(f"## {chart.title}\n\n{chart.caption}"))
        cells.append(new_code_cell(chart.call))

    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
            "loadgen": {"run_id": run.id, "store": shown},
        },
    )
    if execute:
        _execute(nb, url, timeout_s)
    nbformat.validate(nb)
    return nb


def _execute(nb: Any, url: DatabaseURL, timeout_s: float) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    env = dict(os.environ)
    # The kernel reads the real URL (with its password) from the environment, never from the file.
    env["LOADGEN_DB_URL"] = url.url
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                            resources={"metadata": {"path": os.getcwd()}})
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise RunError(f"the notebook report failed to execute: {lines[-1] if lines else exc}") from None
    except (CellTimeoutError, DeadKernelError, RuntimeError, OSError) as exc:
        raise RunError(f"the notebook report could not be executed: {exc}") from None
