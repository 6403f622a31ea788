"""Text safe to print: names and quoted content stay on one line, with no escapes.

A problem quotes what it is about (a key, an alias, a file name). Printed raw, a quoted
newline would split one problem into several lines and let a manifest write lines of
its own into a CI log -- on GitHub, a line starting with ``::`` is a workflow command.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, Unicode line/paragraph separators and bidirectional overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n`` -> ``\\x0a``)."""
    return _UNPRINTABLE.sub(_escape, text)


__all__ = ["one_line"]
