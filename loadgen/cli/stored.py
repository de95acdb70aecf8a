"""The commands on the results store: ``db migrate``, ``runs list/show/export``, ``compare``,
``report`` and ``import``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import typer

from ..errors import EXIT_OK, UsageError
from .parsers import tolerances
from .root import app, console, reports_errors

if TYPE_CHECKING:
    from ..store.url import DatabaseURL


def db_url(db: str | None) -> DatabaseURL:
    from ..store.url import parse_db_url

    return parse_db_url(db)


def finished_summary(db: str | None, run_ref: str, so: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored run and its summary; a run that did not finish is a UsageError: ``did not finish, {so}``."""
    from ..store.history import get_run

    run = get_run(db_url(db), run_ref)
    if run["summary"] is None:
        raise UsageError(f"run {run['id']} did not finish, {so}")
    return run, run["summary"]


DB_OPTION = typer.Option(None, "--db", envvar=["LOADGEN_DB_URL", "DATABASE_URL"], help="Results store: postgresql://… or sqlite:///FILE (default sqlite:///loadgen.db).")

db_app = typer.Typer(help="The results database.", no_args_is_help=True)
runs_app = typer.Typer(help="Browse stored runs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")


@db_app.command("migrate")
@reports_errors
def db_migrate(db: Optional[str] = DB_OPTION) -> None:
    """Create or upgrade the results schema (also done on first use)."""
    from ..store.history import migrate

    url = db_url(db)
    applied = migrate(url)
    if applied:
        print(f"{url.shown}: applied {', '.join(applied)}")
    else:
        print(f"{url.shown}: the schema is up to date")


@runs_app.command("list")
@reports_errors
def runs_list(
    db: Optional[str] = DB_OPTION,
    app_version: Optional[str] = typer.Option(None, "--app-version", help="Only runs of this app version."),
    limit: int = typer.Option(20, "--limit", help="At most this many runs."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array, newest first."),
) -> None:
    """List stored runs, newest first."""
    import orjson

    from ..store.history import list_runs, print_runs, runs_json

    if limit < 1:
        raise UsageError("--limit must be at least 1")
    url = db_url(db)
    rows = list_runs(url, app_version=app_version, limit=limit)
    if as_json:
        print(orjson.dumps(runs_json(rows), option=orjson.OPT_INDENT_2).decode())
    else:
        print_runs(rows, console(), url.shown)


@runs_app.command("show")
@reports_errors
def runs_show(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    db: Optional[str] = DB_OPTION,
) -> None:
    """Show a stored run's summary table."""
    from ..store.history import get_run
    from ..summary import print_summary

    url = db_url(db)
    run = get_run(url, run_ref)
    out = console()
    out.print(
        f"run {run['id']}: app version {run['app_version'] or '-'}, {run['test_type']}, "
        f"{run['scenario'] or '-'} against {run['host'] or '-'}; status {run['status']}"
        + ("" if run["exit_code"] is None else f", exit code {run['exit_code']}"),
        markup=False,
    )
    if run["summary"] is None:
        out.print("this run has no summary: it did not finish (its intervals are stored)")
        return
    print_summary(run["summary"], out)


@runs_app.command("export")
@reports_errors
def runs_export(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    db: Optional[str] = DB_OPTION,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Print a stored run's summary JSON (the document --summary-json writes)."""
    import orjson

    _, summary = finished_summary(db, run_ref, "so it has no summary")
    data = orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    if output:
        try:
            with open(output, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise UsageError(f"--output {output} cannot be written: {exc.strerror}") from None
    else:
        print(data.decode())


@app.command("compare")
@reports_errors
def compare_cmd(
    baseline_version: str = typer.Option(..., "--baseline-version", envvar="BASELINE_VERSION", help="The app version to compare against."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="The candidate run (id, prefix or 'latest'; default latest)."),
    candidate_version: Optional[str] = typer.Option(None, "--candidate-version", help="Use the latest completed run of this version as the candidate."),
    thresholds_file: Optional[str] = typer.Option(None, "--thresholds", "--thresholds-file", envvar="LOADGEN_THRESHOLDS_FILE", help="Regression thresholds (JSON, // comments allowed)."),
    baseline_runs: Optional[int] = typer.Option(None, "--baseline-runs", help="How many of the baseline version's latest runs (default 3)."),
    db: Optional[str] = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare a run with a baseline version; exit 1 on a regression."""
    import orjson

    from ..errors import EXIT_FAILED
    from ..store.history import run_comparison

    if candidate and candidate_version:
        raise UsageError("give --candidate or --candidate-version, not both")
    if baseline_runs is not None and baseline_runs < 1:
        raise UsageError("--baseline-runs must be at least 1")
    th = tolerances(thresholds_file, "--thresholds")
    result = run_comparison(
        db_url(db),
        baseline_version=baseline_version,
        candidate=candidate,
        candidate_version=candidate_version,
        thresholds=th,
        baseline_runs=baseline_runs,
        console=console(),
        as_json=as_json,
    )
    if as_json:
        print(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
    raise typer.Exit(EXIT_FAILED if result.verdict == "regression" else EXIT_OK)


@app.command("report")
@reports_errors
def report_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    output: str = typer.Option(..., "--output", "-o", help="Where to write the report."),
    baseline_version: Optional[str] = typer.Option(None, "--baseline-version", envvar="BASELINE_VERSION", help="Add a comparison with this app version's last runs."),
    report_format: str = typer.Option("html", "--format", help="html (self-contained, offline) or notebook (.ipynb, executed)."),
    thresholds_file: Optional[str] = typer.Option(None, "--thresholds", "--thresholds-file", envvar="LOADGEN_THRESHOLDS_FILE", help="Regression thresholds for the comparison."),
    baseline_runs: Optional[int] = typer.Option(None, "--baseline-runs", help="How many of the baseline version's latest runs (default 3)."),
    db: Optional[str] = DB_OPTION,
) -> None:
    """Write a run's report: HTML (one offline file) or a Jupyter notebook."""
    from ..reports import write_report

    if report_format not in ("html", "notebook"):
        raise UsageError(f"--format must be html or notebook, not {report_format!r}")
    th = tolerances(thresholds_file, "--thresholds") if thresholds_file else None
    written = write_report(output, db_url(db), run_ref, format=report_format,  # type: ignore[arg-type]
                           baseline_version=baseline_version, thresholds=th, baseline_runs=baseline_runs)
    print(f"report written to {written}")


@app.command("import")
@reports_errors
def import_cmd(
    spool_file: str = typer.Argument(..., metavar="FILE", help="A spool file a run left when its database was unreachable."),
    db: Optional[str] = DB_OPTION,
    keep: bool = typer.Option(False, "--keep", help="Keep the file after a successful import."),
) -> None:
    """Load a spooled run into the database."""
    from pathlib import Path

    from ..store.history import import_spool

    url = db_url(db)
    path = Path(spool_file)
    res, merged = import_spool(url, path)
    state = "complete" if res.finished else "incomplete (the run did not finish; its flushed intervals are kept)"
    print(f"imported run {res.run_id} into {url.shown}: {res.intervals} intervals, {state}")
    if merged is not None:
        print(f"every shard of run {res.run_id} is in: merged ({merged['requests']:,} requests)")
    elif res.sharded:
        print(f"run {res.run_id} merges once every one of its shards is in")
    if not keep:
        path.unlink(missing_ok=True)
