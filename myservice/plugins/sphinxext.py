"""Sphinx extension: ``.. list-plugins:: namespace`` (equivalent to stevedore's).

Add ``"myservice.plugins.sphinxext"`` to ``extensions`` in ``conf.py``.

Options:

``:detailed:``
    one section per plugin (title = plugin name) with its full docstring and the
    distribution providing it; without it, a bullet list of ``name -- first docstring line``.
``:overline-style:``
    character drawn above each section title (default: none).
``:underline-style:``
    character drawn below each section title (default ``=``).

Plugins are listed by name.  A plugin that cannot be imported is listed with the
reason instead of failing the documentation build.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

from myservice.plugins.extension import Extension, ExtensionManager, describe_entry_point

LOG = logging.getLogger(__name__)

_NO_DOC = "*No documentation for this plugin.*"


def _docstring(plugin: Any) -> str:
    return inspect.getdoc(plugin) or ""


def _origin(ext: Extension[Any]) -> str:
    dist = ext.distribution
    where = f"``{dist.name} {dist.version}``" if dist is not None else "an unknown distribution"
    return f"Provided by {where} (``{ext.entry_point_target}``)."


def _single_char(value: str | None) -> str:
    value = (value or "").strip()
    if len(value) != 1:
        raise ValueError(
            f"expected a single punctuation character such as '=' or '-', got {value!r}"
        )
    return value


def _simple_list(
    exts: list[Extension[Any]], failures: list[tuple[Any, BaseException]]
) -> Iterator[tuple[str, str]]:
    for ext in sorted(exts, key=lambda e: e.name):
        doc = _docstring(ext.plugin)
        summary = doc.splitlines()[0] if doc else _NO_DOC
        yield f"* ``{ext.name}`` -- {summary}", ext.module_name
    for ep, err in failures:
        yield f"* ``{ep.name}`` -- *could not be loaded: {type(err).__name__}: {err}*", ep.value


def _detailed_list(
    exts: list[Extension[Any]],
    failures: list[tuple[Any, BaseException]],
    over: str,
    under: str,
) -> Iterator[tuple[str, str]]:
    for ext in sorted(exts, key=lambda e: e.name):
        source = ext.module_name
        width = len(ext.name)
        if over:
            yield over * width, source
        yield ext.name, source
        yield under * width, source
        yield "", source
        doc = _docstring(ext.plugin) or _NO_DOC
        for line in doc.splitlines():
            yield line, source
        yield "", source
        yield _origin(ext), source
        yield "", source
    for ep, err in failures:
        width = len(ep.name)
        if over:
            yield over * width, ep.value
        yield ep.name, ep.value
        yield under * width, ep.value
        yield "", ep.value
        yield f"*Could not be loaded: {type(err).__name__}: {err}*", ep.value
        yield "", ep.value


class ListPluginsDirective(Directive):
    """``.. list-plugins:: namespace`` -- document the plugins of a namespace."""

    required_arguments = 1
    option_spec = {
        "detailed": directives.flag,
        "overline-style": _single_char,
        "underline-style": _single_char,
    }
    has_content = True

    def run(self) -> list[nodes.Node]:
        namespace = " ".join(self.arguments).strip()
        failures: list[tuple[Any, BaseException]] = []

        def on_failure(_mgr: Any, ep: Any, err: BaseException) -> None:
            LOG.warning("list-plugins: could not load %s: %s", describe_entry_point(ep), err)
            failures.append((ep, err))

        mgr: ExtensionManager[Any] = ExtensionManager(
            namespace, on_load_failure_callback=on_failure, warn_on_missing_entrypoint=False
        )
        exts = list(mgr)
        result = StringList()
        if not exts and not failures:
            result.append(f"*No plugins are installed in namespace* ``{namespace}``.", namespace)
        elif "detailed" in self.options:
            over = self.options.get("overline-style", "")
            under = self.options.get("underline-style", "=")
            for line, source in _detailed_list(exts, failures, over, under):
                result.append(line, source)
        else:
            for line, source in _simple_list(exts, failures):
                result.append(line, source)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, result, node)
        return node.children


def setup(app: Any) -> dict[str, Any]:
    """Register the ``list-plugins`` directive."""
    app.add_directive("list-plugins", ListPluginsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
