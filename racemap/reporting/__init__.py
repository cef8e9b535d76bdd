"""Reports, summaries, status and notifications; ``plural`` is the one pluralisation of their
counts ("1 page", "2 pages"), importable without pandas (``racemap status`` uses it)."""


def plural(count: int, noun: str) -> str:
    """``1 page``, ``2 pages``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
