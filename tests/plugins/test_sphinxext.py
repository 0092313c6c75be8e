"""The ``list-plugins`` Sphinx directive, built for real in a tiny project."""

from __future__ import annotations

import io
import textwrap

import pytest

sphinx_application = pytest.importorskip("sphinx.application")
from sphinx.util.docutils import docutils_namespace  # noqa: E402


def build(tmp_path, body: str) -> str:
    src = tmp_path / "docs"
    src.mkdir(exist_ok=True)
    (src / "conf.py").write_text("extensions = ['myservice.plugins.sphinxext']\nproject = 'demo'\n")
    (src / "index.rst").write_text("Plugins\n=======\n\n" + textwrap.dedent(body))
    out = tmp_path / "out"
    warnings = io.StringIO()
    with docutils_namespace():
        app = sphinx_application.Sphinx(
            str(src),
            str(src),
            str(out),
            str(tmp_path / "doctrees"),
            "text",
            status=io.StringIO(),
            warning=warnings,
            freshenv=True,
        )
        app.build(force_all=True)
    assert "ERROR" not in warnings.getvalue(), warnings.getvalue()
    return (out / "index.txt").read_text()


def _detailed_list(*options: str, under_drivers: bool = False) -> str:
    """The rst of a ``:detailed:`` ``list-plugins`` of ``t.ns`` with ``options`` (each a
    ``:name: value`` line), below a ``Drivers`` section title drawn with "-" if
    ``under_drivers``."""
    heading = "Drivers\n-------\n\n" if under_drivers else ""
    lines = [".. list-plugins:: t.ns", "   :detailed:", *("   " + o for o in options)]
    return heading + "\n".join(lines) + "\n"


def test_simple_list(plugins, tmp_path):
    text = build(tmp_path, ".. list-plugins:: t.ns\n")
    assert '* "alpha" -- The alpha plugin.' in text
    assert '* "beta" -- The beta plugin.' in text
    assert '* "gamma" -- The gamma plugin.' in text
    assert text.index("alpha") < text.index("beta") < text.index("gamma")


def test_detailed_list_sections_docstrings_and_distribution(plugins, tmp_path):
    plugins.module("undocumented", "class Bare:\n    pass\n")
    plugins.install("dist-bare", "4.2", {"t.ns": {"bare": "{mod}undocumented:Bare"}})
    text = build(tmp_path, _detailed_list(":underline-style: -"))
    # The text builder draws level-2 section titles with "=": each plugin is a subsection
    # of "Plugins", with its full docstring and where it comes from.
    assert "alpha\n=====\n\nThe alpha plugin.\n\n" in text
    assert f'Provided by "dist-b 2.0" ("{plugins.mod("classes")}:Gamma").' in text
    assert "bare\n====\n\n*No documentation for this plugin.*" in text
    assert text.index("alpha") < text.index("bare") < text.index("beta")


def test_underline_style_sets_the_section_level(plugins, tmp_path):
    text = build(tmp_path, _detailed_list(":underline-style: ~", under_drivers=True))
    # "~" is a new title style below "-": the plugins are level-3 sections ("-" in text).
    assert "Drivers\n=======" in text
    assert "gamma\n-----\n\nThe gamma plugin." in text


def test_overline_style_sets_a_new_section_level(plugins, tmp_path):
    text = build(
        tmp_path,
        _detailed_list(":overline-style: #", ":underline-style: #", under_drivers=True),
    )
    # "#"-over-and-under is a third title style: level 3, drawn with "-" by the builder.
    assert "Drivers\n=======" in text
    assert "beta\n----\n\nThe beta plugin." in text


def test_bad_style_option_is_reported(plugins, tmp_path):
    with pytest.raises(AssertionError, match="single punctuation character"):
        build(tmp_path, _detailed_list(":underline-style: =="))


def test_empty_namespace_and_broken_plugin(plugins, tmp_path):
    plugins.module("boom", "raise ImportError('no driver library')\n")
    plugins.install("dist-boom", "1", {"t.boom": {"boom": "{mod}boom:X"}})
    text = build(
        tmp_path,
        """\
        .. list-plugins:: t.nothing

        .. list-plugins:: t.boom
        """,
    )
    assert '*No plugins are installed in namespace* "t.nothing".' in text
    assert "could not be loaded: ImportError: no driver library" in text
