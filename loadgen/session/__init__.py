"""The session: one ``loadgen run`` in steps, from configuration to exit code.

- :mod:`.options`: what the run is asked (the test, store, gate, observation);
- :mod:`.record`: the run's record as it begins;
- :mod:`.sinks`: what watches the run (``/metrics``, the writer, the display, abort-on-fail, collectors);
- :mod:`.modes`: one process, workers, or a shard: the engine, the conclusion, the persistence;
- :mod:`.verdict`: the thresholds and "the target served nothing";
- :mod:`.summary_file`, :mod:`.console`: the outputs;
- :mod:`.run`: :class:`RunSession`, the steps in order.
"""

from __future__ import annotations

from .options import GateOptions, ObserveOptions, RunSpec, StoreOptions
from .record import new_run_id, scenario_key
from .run import Outcome, RunSession

__all__ = ["RunSession", "Outcome", "RunSpec", "StoreOptions", "GateOptions", "ObserveOptions", "new_run_id",
           "scenario_key"]
