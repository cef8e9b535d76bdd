"""racemap: link an application's Formula 1 races to OpenF1 meetings and sessions."""

__version__ = "0.1.0"
