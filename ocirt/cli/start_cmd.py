"""`ocirt start CONTAINER | -n NAME`: start a container."""

from __future__ import annotations

from ocirt.cli.common import container_command

HELP, add_arguments, run = container_command("start", "Start a container.")
