"""racemap: link an application's Formula 1 races to OpenF1 meetings and sessions."""

__version__ = "0.1.0"

import sys as _sys
import warnings as _warnings

# platformdirs warns on every import when XDG_RUNTIME_DIR is unset (containers, CI): noise.
_warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

# jsonschema (imported by dbt, by papermill through nbformat, and by Great Expectations through
# altair) imports the optional package rfc3987_syntax as soon as it is installed, and jupyterlab
# installs it (jupyter-events wants jsonschema[format-nongpl]). That module builds some 35 Earley
# parsers when imported: about 1.2 s of CPU in every racemap process and in the GX worker, for
# the "iri" formats, which no schema racemap validates uses (python-jsonschema/jsonschema#1428).
# Marked missing here, before any of those is imported, jsonschema leaves out those two format
# checkers. An analyst's Jupyter server does not import racemap and keeps them.
_sys.modules.setdefault("rfc3987_syntax", None)
