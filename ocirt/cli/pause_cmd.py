"""`ocirt pause CONTAINER`: Pause (freeze) a running container."""

from __future__ import annotations

from ocirt.cli.common import container_command

HELP, add_arguments, run = container_command("pause", "Pause (freeze) a running container.")
