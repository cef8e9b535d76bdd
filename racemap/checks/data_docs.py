"""Great Expectations Data Docs that open offline: the views the Data Docs site of
racemap/checks/validate.py names (``racemap.checks.data_docs.OfflinePageView`` and
``OfflineIndexPageView``).

GX's page templates pull jQuery, Bootstrap, bootstrap-table, Vega and Font Awesome from CDNs and
render the index table in JavaScript: offline, or behind a proxy, the pages show errors and an
empty index. These views put the templates of racemap/templates/data_docs/ (package data) first:
they need nothing from the network. Its README says why GX's custom_views_directory cannot
replace GX's own templates. Great Expectations is imported only when GX builds a view.
"""

from __future__ import annotations

TEMPLATES = ("templates", "data_docs")


def _templates() -> dict[str, str]:
    """racemap's Data Docs templates and styles, by name (the Jinja names GX's pages include)."""
    from importlib.resources import files

    folder = files("racemap").joinpath(*TEMPLATES)
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in folder.iterdir()
        if item.name.endswith((".j2", ".css"))
    }


def _default_styles() -> str:
    """GX's default Data Docs styles without their one remote image (a dark-mode logo)."""
    import re
    from importlib.resources import files

    css = (
        files("great_expectations") / "render/view/static/styles/data_docs_default_styles.css"
    ).read_text(encoding="utf-8")
    return re.sub(r"url\(\s*['\"]?https?://[^)]*\)", "none", css)


def _memory_bytecode_cache():
    """Compiled templates kept in memory for every view of one class in this process. GX makes
    new views, each with a Jinja environment of its own, for every validation result a
    checkpoint publishes (four in the mapping checkpoint), and compiled each of some 55 templates
    every time: about a third of a checkpoint's time. Jinja checks each template's source
    against its checksum before it reuses the code."""
    from jinja2 import BytecodeCache

    class MemoryBytecodeCache(BytecodeCache):
        def __init__(self) -> None:
            self._code: dict[str, bytes] = {}

        def load_bytecode(self, bucket) -> None:
            if (code := self._code.get(bucket.key)) is not None:
                bucket.bytecode_from_string(code)

        def dump_bytecode(self, bucket) -> None:
            self._code[bucket.key] = bucket.bytecode_to_string()

    return MemoryBytecodeCache()


def _offline_view(base):
    from jinja2 import ChoiceLoader, DictLoader

    compiled = _memory_bytecode_cache()

    class View(base):
        def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
            super().__init__(custom_styles_directory, custom_views_directory)
            templates = {**_templates(), "data_docs_default_styles.css": _default_styles()}
            self.env.loader = ChoiceLoader([DictLoader(templates), self.env.loader])
            self.env.bytecode_cache = compiled

    View.__name__ = View.__qualname__ = "Offline" + base.__name__.removeprefix("DefaultJinja")
    return View


def __getattr__(name: str):
    # The views import GX's renderer; build them only when GX instantiates them by name.
    if name in {"OfflinePageView", "OfflineIndexPageView"}:
        from great_expectations.render.view import (
            DefaultJinjaIndexPageView,
            DefaultJinjaPageView,
        )

        base = DefaultJinjaIndexPageView if name == "OfflineIndexPageView" else DefaultJinjaPageView
        view = _offline_view(base)
        globals()[name] = view
        return view
    raise AttributeError(name)
