"""Judgement: whether a run passed, in the run (criteria) and against earlier runs (regression).

Two kinds of judgement, named apart because users call both "thresholds":

- in-run **criteria** (``--threshold 'p95<300ms'``, a scenario's ``thresholds``):
  :mod:`.criteria` parses them, :mod:`.evaluation` judges them on the recorder's
  totals, :mod:`.abort_on_fail` stops a run at the first failure;
- the **regression check** against a baseline version: :mod:`.tolerances` (the
  thresholds file), :mod:`.run_stats` (what it reads of a run), :mod:`.comparison`
  (``compare()`` and its result), :mod:`.verdict` (one metric of one subject),
  :mod:`.noise` and :mod:`.binomial` (the statistical guard).

:mod:`.render` formats both for the terminal, and the comparison's cells for the
HTML report. Import from the modules; this package imports nothing, so loading a
criterion does not load numpy's statistics or rich's tables.
"""
