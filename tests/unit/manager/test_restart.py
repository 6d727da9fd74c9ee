"""Restart policies (Kanto §7 + docs/kanto-compatibility.md decision 9) and the back-off."""

from __future__ import annotations

import itertools

import pytest

from ocirt.config.model import RestartPolicy, RestartPolicyType
from ocirt.manager.restart import (
    max_backoff,
    next_backoff,
    should_restart,
    should_start_on_boot,
)

NO = RestartPolicy(RestartPolicyType.NO)
ALWAYS = RestartPolicy(RestartPolicyType.ALWAYS)
UNLESS = RestartPolicy(RestartPolicyType.UNLESS_STOPPED)
FAILURE = RestartPolicy(RestartPolicyType.ON_FAILURE)
FAILURE_2 = RestartPolicy(RestartPolicyType.ON_FAILURE, max_retry_count=2)


@pytest.mark.parametrize("code", [0, 1, 137])
def test_no_never_restarts(code: int) -> None:
    assert not should_restart(NO, code, 0, False)


@pytest.mark.parametrize("policy", [ALWAYS, UNLESS])
@pytest.mark.parametrize("code", [0, 3, 137])
def test_always_and_unless_stopped_restart_any_exit(policy: RestartPolicy, code: int) -> None:
    assert should_restart(policy, code, 50, False)


@pytest.mark.parametrize("policy", [NO, ALWAYS, UNLESS, FAILURE, FAILURE_2])
def test_a_manual_stop_is_respected_by_every_policy(policy: RestartPolicy) -> None:
    assert not should_restart(policy, 143, 0, True)


def test_on_failure_counts_retries() -> None:
    assert not should_restart(FAILURE_2, 0, 0, False)
    assert should_restart(FAILURE_2, 3, 0, False)
    assert should_restart(FAILURE_2, 3, 1, False)
    assert not should_restart(FAILURE_2, 3, 2, False)
    # max 0 means no limit.
    assert should_restart(FAILURE, 3, 1000, False)
    assert not should_restart(FAILURE, 0, 0, False)


def test_boot_start_needs_a_successful_start_before() -> None:
    for policy in (ALWAYS, UNLESS, FAILURE):
        assert not should_start_on_boot(policy, 1, 0, False, False)


def test_boot_start_clears_a_manual_stop_only_for_always() -> None:
    assert should_start_on_boot(ALWAYS, 0, 0, True, True)
    assert not should_start_on_boot(UNLESS, 0, 0, True, True)
    assert should_start_on_boot(UNLESS, 0, 0, False, True)
    assert not should_start_on_boot(NO, 1, 0, False, True)
    assert should_start_on_boot(FAILURE_2, 1, 1, False, True)
    assert not should_start_on_boot(FAILURE_2, 0, 1, False, True)


def test_backoff_doubles_from_100ms_to_the_default_minute() -> None:
    delays = []
    delay = 0.0
    for _ in range(14):
        delay = next_backoff(delay, 0.5, UNLESS)
        delays.append(delay)
    assert delays[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert delays[-1] == 60.0
    assert max(delays) == 60.0
    assert all(b >= a for a, b in itertools.pairwise(delays))


def test_backoff_ceiling_is_retry_timeout() -> None:
    policy = RestartPolicy(RestartPolicyType.ALWAYS, retry_timeout=1)
    assert max_backoff(policy) == 1.0
    assert next_backoff(0.8, 0.0, policy) == 1.0
    assert next_backoff(1.0, 0.0, policy) == 1.0


def test_backoff_resets_after_ten_seconds_of_running() -> None:
    assert next_backoff(6.4, 9.9, ALWAYS) == pytest.approx(12.8)
    assert next_backoff(6.4, 10.0, ALWAYS) == pytest.approx(0.1)
