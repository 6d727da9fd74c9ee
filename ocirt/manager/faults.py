"""A test-only fault hook: SIGKILL the manager's own process at a named step. Does I/O.

Set `OCIRT_TEST_CRASH_AT=<step>` (e.g. `start:after-run`) in the environment of a
manager process to make it kill itself, with no clean-up, when it reaches that step.
The crash-recovery tests use it to prove that a store left at any step can be
reconciled. Unset (always, outside those tests), `crash_point` does nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "OCIRT_TEST_CRASH_AT"

# Every step at which the manager offers to crash, in the order the use cases reach them.
STEPS = (
    "create:after-dir",
    "create:after-rootfs",
    "create:after-bundle",
    "start:after-run",
    "start:after-handle",
    "remove:after-dead",
    "remove:after-delete",
)


def crash_point(step: str) -> None:
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
