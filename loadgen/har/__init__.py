"""``loadgen har``: a browser's HAR recording as a loadgen scenario (see ``convert.py`` for the steps).

Reading and checking the file (``model``), what is replayed (``filters``), the
steps and think times (``grouping``), row names (``names``), headers and bodies
(``headers``, ``bodies``), values read at run time (``correlate``), each request
as a call (``calls``), and the scenario's source (``plan``, ``source``).
"""

from .convert import HarConversion, HarOptions, convert_har

__all__ = ["HarConversion", "HarOptions", "convert_har"]
