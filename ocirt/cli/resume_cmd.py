"""`ocirt resume CONTAINER`: Resume a paused container."""

from __future__ import annotations

from ocirt.cli.common import container_command

HELP, add_arguments, run = container_command("resume", "Resume a paused container.")
