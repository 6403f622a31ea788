"""Report formats: one formatter per output format behind one small interface.

Adding a format is one new module with a class that has a ``name`` and a
``render(verdict, context) -> str``, and one line in ``FORMATTERS`` below.
"""

from __future__ import annotations

from metaqore.exceptions import ConfigurationError
from metaqore.report.base import Formatter, ReportContext, write_report
from metaqore.report.github import GitHubFormatter, publish_github
from metaqore.report.json_report import JsonFormatter
from metaqore.report.junit import JUnitFormatter
from metaqore.report.markdown import MarkdownFormatter
from metaqore.report.sarif import SarifFormatter
from metaqore.report.terminal import TerminalFormatter

FORMATTERS: dict[str, Formatter] = {
    formatter.name: formatter
    for formatter in (
        TerminalFormatter(),
        JsonFormatter(),
        JUnitFormatter(),
        SarifFormatter(),
        MarkdownFormatter(),
        GitHubFormatter(),
    )
}


def get_formatter(name: str) -> Formatter:
    """The formatter registered as ``name``; an unknown name is a usage error."""
    try:
        return FORMATTERS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATTERS))
        raise ConfigurationError(
            f"unknown report format {name!r} (expected one of: {known})"
        ) from None


__all__ = [
    "FORMATTERS",
    "Formatter",
    "ReportContext",
    "get_formatter",
    "publish_github",
    "write_report",
]
