"""Measuring a run in one process: the workload's schedule (:mod:`.workload`), the
:class:`~.engine.Engine` that runs users against it, the recorder and its HDR
histograms (:mod:`.recorder`, :mod:`.histogram`), and the stall monitor and
watchdog that keep the generator honest about itself (:mod:`.stall`)."""
