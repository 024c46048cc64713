"""Data Docs views that compile GX's page templates once, not on every page.

GX renders each Data Docs page with a new Jinja environment, so every validation compiled
the same 25 templates again: 0.13-0.15 s of each validation (measured 2026-11-23), in every
task process. These views are GX's own (``DefaultJinjaPageView`` and
``DefaultJinjaIndexPageView``, same templates, same HTML) with a Jinja bytecode cache in
``<var>/gx/templates``: a template is compiled once per GX version, and later pages, in this
process or the next task's, load the compiled code. meterflow.quality.data_docs_site names
them in the site's configuration (``site_index_builder.view`` and
``site_section_builders.<section>.view``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache, FileSystemBytecodeCache

from meterflow import config


@cache
def _bytecode(directory: str) -> BytecodeCache:
    Path(directory).mkdir(parents=True, exist_ok=True)
    return FileSystemBytecodeCache(directory)


def template_cache() -> BytecodeCache:
    """The compiled templates, kept under ``<var>/gx/templates``. Jinja checks each entry
    against its template's source, so a GX upgrade recompiles what changed."""
    return _bytecode(str(Path(config.get("var")) / "gx" / "templates"))


class _KeptTemplates:
    """Sets the kept compiled templates on the Jinja environment a GX view has just made."""

    env: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = template_cache()


class PageView(_KeptTemplates, DefaultJinjaPageView):
    """GX's page view (validation and suite pages) with the kept compiled templates."""


class IndexPageView(_KeptTemplates, DefaultJinjaIndexPageView):
    """GX's index page view with the kept compiled templates."""
