"""``--summary-json``: the copy of the verdict CI reads, and the one that survives when
the store cannot take the run."""

from __future__ import annotations

from ..errors import RunError
from ..summary import RunSummary, write_summary

__all__ = ["SummaryFile"]


class SummaryFile:
    """Written as soon as the run is judged, again whenever the exit code changes. A write
    that failed is not tried again, and fails the run (:meth:`check`) once it is over:
    the verdict stands only if its summary is where CI looks for it."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.error: str | None = None

    @property
    def kept(self) -> bool:
        """The file holds the latest summary."""
        return bool(self.path) and self.error is None

    def write(self, summary: RunSummary) -> None:
        if not self.path or self.error is not None:
            return
        try:
            write_summary(summary.to_json(), self.path)
        except OSError as exc:
            self.error = exc.strerror or str(exc)

    def check(self) -> None:
        if self.error is not None:
            raise RunError(f"--summary-json {self.path} could not be written: {self.error}")
