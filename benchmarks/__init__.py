"""``racemap bench``: what racemap costs, measured side by side, in throw-away databases only.

One module per measurement, each printed as tables and written to ``<reports>/bench.json``:

- ``request_counts``: racemap's load (one request per endpoint per season) against the original
  design's per-race algorithm, on the same local OpenF1 server and rate limit;
- ``race_data``: ``racemap sync`` (one request per endpoint per session) against a per-driver
  fetch, on the same local OpenF1 server and rate limit;
- ``scales``: ``dbt build`` and the apply on synthetic copies of the real data, ×1 to ×1000;
- ``end_to_end``: a warm ``racemap run --offline`` against the floor of the tools it starts;
- ``devices``, ``pages``: the warm run without each concurrency device; the race pages in one
  shared kernel against a kernel each;
- ``memory``: the peak memory of storing the largest answer, a whole session's car_data;
- ``imports``: what importing the CLI and the pipeline costs.

``scratch`` prepares the throw-away databases that ``racemap.testing.databases`` creates and
drops (on the given server, or on a temporary embedded PostgreSQL), ``report`` prints,
``command`` runs the parts. Figures are printed, never asserted: ``tests/test_bench.py``
checks the structure and the facts, not the timings. ``racemap bench``
exits 1 when a part fails or a check does (``command.failures``: a scale that does not finish, a
node growing faster than the data, a nested loop that rescans, memory over its target or growing
faster than the answer), one line each.

The runtime package never imports this one at module level: ``racemap/cli.py`` imports it when
it builds the ``bench`` command's options and when the command runs.
"""

from .command import add_arguments, failures, main, parse_scales, run
from .report import format_report

__all__ = ["add_arguments", "failures", "format_report", "main", "parse_scales", "run"]
