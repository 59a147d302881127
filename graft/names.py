"""Names from the user's disk, made safe to show: file names may hold tabs, newlines or terminal
escape sequences (``ESC[2J`` clears a screen), which would break a TSV row or reach the terminal.

:func:`escape_name` writes every control character (and the backslash) as a visible escape, so
each name stays on one line and one field, and prints exactly as text.

Example:
    >>> escape_name("cat\\tdog\\n\\x1b[31mred.jpg")
    'cat\\\\tdog\\\\n\\\\x1b[31mred.jpg'
"""

from __future__ import annotations

_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_name(text: str) -> str:
    """``text`` with backslashes, tabs, newlines and other control characters escaped.

    Example:
        >>> escape_name("plain name.jpg")
        'plain name.jpg'
    """
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif not ch.isprintable() and ch != " ":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
