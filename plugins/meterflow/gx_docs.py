"""Data Docs views that compile GX's page templates once, not on every page, and an index
builder that reads each validation result once, not on every validation.

GX renders each Data Docs page with a new Jinja environment, so every validation compiled
the same 25 templates again: 0.13-0.15 s of each validation (measured 2026-11-23), in every
task process. These views are GX's own (``DefaultJinjaPageView`` and
``DefaultJinjaIndexPageView``, same templates, same HTML) with a Jinja bytecode cache in
``<var>/gx/templates``: a template is compiled once per GX version, and later pages, in this
process or the next task's, load the compiled code. meterflow.quality.data_docs_site names
them in the site's configuration (``site_index_builder.view`` and
``site_section_builders.<section>.view``).

GX's index builder loads every validation result of the site (the whole JSON, as a result
object) to list it, on every validation: 1.5 ms per stored result, so after 350 batches a
validation took ~0.5 s longer (measured 2026-11-23) and after 10,000 it would take ~15 s, with
the GX lock held. ``SiteIndexBuilder`` lists the same rows in the same order but keeps the
few fields the index shows of each result in ``<gx project>/uncommitted/index_entries.json``;
only a result not seen before is read.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
)
from great_expectations.render.renderer.site_builder import (
    FALSEY_YAML_STRINGS,
    DefaultSiteIndexBuilder,
    _resolve_asset_name,
)
from great_expectations.render.util import resource_key_passes_run_name_filter
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from great_expectations.util import convert_to_json_serializable
from jinja2 import BytecodeCache, FileSystemBytecodeCache

from meterflow import config

log = logging.getLogger(__name__)


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


class SiteIndexBuilder(DefaultSiteIndexBuilder):
    """GX's index builder, reading each stored validation result once (see the module)."""

    def _add_validations_to_index_links(
        self, index_links_dict: Any, validation_and_profiling_result_site_keys: list[Any]
    ) -> None:
        section = self.site_section_builders_config.get("validations", "None")
        if not section or section in FALSEY_YAML_STRINGS:
            return
        run_name_filter = self.site_section_builders_config["validations"]["run_name_filter"]
        keys = sorted(
            (
                key
                for key in validation_and_profiling_result_site_keys
                if resource_key_passes_run_name_filter(key, run_name_filter)
            ),
            key=lambda key: key.run_id.run_time,
            reverse=True,
        )
        if self.validation_results_limit:
            keys = keys[: self.validation_results_limit]
        path = Path(self.data_context.root_directory) / "uncommitted" / "index_entries.json"
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = {}
        entries = {}
        for key in keys:
            name = json.dumps(key.to_tuple())
            entry = kept.get(name) or self._entry(key)
            if entry is None:
                continue
            entries[name] = entry
            self.add_resource_info_to_index_links_dict(
                index_links_dict=index_links_dict,
                expectation_suite_name=key.expectation_suite_identifier.name,
                section_name="validations",
                batch_identifier=key.batch_identifier,
                run_id=key.run_id,
                validation_success=entry["success"],
                run_time=key.run_id.run_time,
                run_name=key.run_id.run_name,
                asset_name=entry["asset_name"],
                batch_kwargs=entry["batch_kwargs"],
                batch_spec=entry["batch_spec"],
            )
        if entries != kept:  # new results in, deleted ones out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(entries))

    def _entry(self, key: Any) -> dict[str, Any] | None:
        """What the index shows of one stored result; None (and a warning, as GX does) when
        it cannot be read."""
        try:
            result = self.data_context.get_validation_result(
                batch_identifier=key.batch_identifier,
                expectation_suite_name=key.expectation_suite_identifier.name,
                run_id=key.run_id,
                validation_results_store_name=self.source_stores.get("validations"),
            )
        except Exception:  # GX skips an unreadable result with a warning; so do we
            result = None
        if not isinstance(result, ExpectationSuiteValidationResult):
            log.warning("Validation result not found: %s - skipping", key.to_tuple())
            return None
        return convert_to_json_serializable(
            {
                "success": result.success,
                "asset_name": _resolve_asset_name(result),
                "batch_kwargs": result.meta.get("batch_kwargs", {}),
                "batch_spec": result.meta.get("batch_spec", {}),
            }
        )
