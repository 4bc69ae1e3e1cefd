"""The chat UI's rendering and assets: HTML fragments (``render``), ``chat.css``, ``chat.js``.

The Gradio app (``app.py``) uses this package and the public ``qa`` API, nothing else of ``qa``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

#: Event handlers for Gradio's ``js=``: each calls a function that ``chat.js`` defines.
OPEN_DOC_JS = "(...args) => window.qa.openDocArgs(...args)"
SCROLL_DOC_JS = "() => window.qa.scrollToMark()"
THEME_JS = "() => window.qa.toggleTheme()"


@cache
def css() -> str:
    """The chat's style sheet (``chat.css``)."""
    return files("qa.ui").joinpath("chat.css").read_text(encoding="utf-8")


@cache
def head() -> str:
    """What goes into the page's ``<head>``: ``chat.js`` in a script element."""
    script = files("qa.ui").joinpath("chat.js").read_text(encoding="utf-8")
    return f"<script>\n{script}</script>\n"
