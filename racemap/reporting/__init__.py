"""Reports, summaries, status and notifications; ``plural`` is the one pluralisation of their
counts ("1 page", "2 pages"), importable without pandas (``racemap status`` uses it)."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 page``, ``2 pages``; ``nouns`` where the plural is not ``noun + s`` (``fetches``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
