"""Observation: what a run shows while it runs, fed by interval sinks (see :mod:`loadgen.sinks`).

- :mod:`.display`: the live terminal display.
- :mod:`.exporter`: the ``/metrics`` exporter, made of :mod:`.catalogue` (the
  families), :mod:`.state` (what is shown, folded from intervals with
  :mod:`.buckets` and :mod:`.window`), :mod:`.exposition` (the text format)
  and :mod:`.server` (the HTTP endpoint).

Nothing is imported here, so the display does not load the exporter's dependencies.
"""
