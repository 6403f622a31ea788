"""Text for people and machines: names kept on one line, JSON documents sized to read.

A problem quotes what it is about (a key, an alias, a file name). Printed raw, a quoted
newline would split one problem into several lines and let a manifest write lines of
its own into a CI log -- on GitHub, a line starting with ``::`` is a workflow command.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and C1 controls, DEL, Unicode line/paragraph separators and bidirectional overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n`` -> ``\\x0a``)."""
    return _UNPRINTABLE.sub(_escape, text)


#: Up to this many findings a JSON document is indented for people to read; beyond, it
#: is compact (the C encoder: several times faster and smaller, for machines to read).
INDENT_UP_TO = 1000


def json_text(document: Any, *, findings: int) -> str:
    """``document`` as the text of a JSON report (UTF-8 kept, newline-terminated)."""
    if findings <= INDENT_UP_TO:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


__all__ = ["INDENT_UP_TO", "json_text", "one_line"]
