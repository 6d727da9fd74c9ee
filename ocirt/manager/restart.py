"""Restart policies and their back-off: when an exited container is started again. Pure.

Kanto's restart manager (`containerm/mgr/mgr_restart_mgr.go`, docs/kanto-compatibility.md §7) with
docs/kanto-compatibility.md decision 9: a manual stop is respected for every policy, `always`
included, until the container is started again or the manager itself starts (then `always` restarts
it, as Docker does).
"""

from __future__ import annotations

from ocirt.config.model import RestartPolicy, RestartPolicyType

# Kanto's and Docker's constants: the first delay, and how long a run must last for the
# delay to start again from the first one.
INITIAL_BACKOFF = 0.1
RESET_AFTER = 10.0
DEFAULT_MAX_BACKOFF = 60.0


def should_restart(
    policy: RestartPolicy, exit_code: int, restart_count: int, manually_stopped: bool
) -> bool:
    """Whether a container that has just exited is to be started again."""
    if manually_stopped:
        return False
    kind = policy.type
    if kind in (RestartPolicyType.ALWAYS, RestartPolicyType.UNLESS_STOPPED):
        return True
    if kind is RestartPolicyType.ON_FAILURE:
        if exit_code == 0:
            return False
        return policy.max_retry_count == 0 or restart_count < policy.max_retry_count
    return False


def should_start_on_boot(
    policy: RestartPolicy,
    exit_code: int,
    restart_count: int,
    manually_stopped: bool,
    started_successfully_before: bool,
) -> bool:
    """Whether the manager starts a stopped container when it starts (Kanto §7).

    Only containers that ran once are started. A manager start clears a manual stop for
    `always` (docs/kanto-compatibility.md decision 9: "until ... the daemon restarts"), never for
    `unless-stopped`.
    """
    if not started_successfully_before:
        return False
    if policy.type is RestartPolicyType.ALWAYS:
        return True
    return should_restart(policy, exit_code, restart_count, manually_stopped)


def max_backoff(policy: RestartPolicy) -> float:
    """The ceiling of the delay: retryTimeout seconds, one minute when 0 (Kanto)."""
    return float(policy.retry_timeout) if policy.retry_timeout > 0 else DEFAULT_MAX_BACKOFF


def next_backoff(previous: float, ran_for: float, policy: RestartPolicy) -> float:
    """The delay before the next restart.

    `previous` is the delay used before the last restart (0 for none); `ran_for` is how
    long the container ran before it exited. The delay doubles from 100 ms up to the
    ceiling, and starts again from 100 ms after a run of 10 s or more.
    """
    ceiling = max_backoff(policy)
    if previous <= 0 or ran_for >= RESET_AFTER:
        return min(INITIAL_BACKOFF, ceiling)
    return min(previous * 2, ceiling)
