"""racemap: link an application's Formula 1 races to OpenF1 meetings and sessions."""

__version__ = "0.1.0"

import warnings as _warnings

# platformdirs warns on every import when XDG_RUNTIME_DIR is unset (containers, CI): noise.
_warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
