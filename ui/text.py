"""User text on pages: always shown as typed, never interpreted as Markdown.

Station names, comments, reviewer and file names come from users. Streamlit renders Markdown
(and its own ``:colour[...]`` and ``:icon:`` syntax) in titles, captions, alerts and labels,
so an image link in a comment would load an outside URL when a manager opens the page.
:func:`md` escapes user text for use inside Markdown; :func:`st_plain` shows it as plain text.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&=])")


def md(text: object) -> str:
    """``text`` escaped so Streamlit's Markdown shows it literally."""
    return _SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")
