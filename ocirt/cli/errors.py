"""The CLI's one error. Pure.

Its own module, so that `ocirt.cli.common` and `ocirt.cli.client` both raise it without
importing each other, and no command imports `ocirt.errors` (issue 17).
"""

from __future__ import annotations


class CliError(Exception):
    """An error the CLI prints as `Error: <message>` and ends with exit code 1: a bad
    argument, or an error answer of the daemon (with the daemon's status and code)."""

    def __init__(self, message: str, status: int = 400, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
