"""``python -m benchmarks``: the same as ``racemap bench``."""

import sys

from racemap.errors import RacemapError, UsageError
from racemap.verdict import EXIT_FAILED, EXIT_USAGE

from .command import main, parser

try:
    sys.exit(main(parser().parse_args()))
except RacemapError as exc:
    print(f"racemap bench: {exc}", file=sys.stderr)
    sys.exit(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED)
