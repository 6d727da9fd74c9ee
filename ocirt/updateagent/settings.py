"""The `update_agent` config section: Kanto's keys and ocirt's additions. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UpdateAgentSettings:
    enable: bool = False
    domain: str = "containers"
    system_containers: tuple[str, ...] = ()
    verbose_inventory_report: bool = False
    # ocirt: drive DOWNLOAD -> UPDATE -> ACTIVATE -> CLEANUP (ROLLBACK on failure) itself.
    auto_apply: bool = False
    # ocirt: how long a new container without a health check must keep running after its
    # start before ACTIVATE passes (as Docker's `--update-monitor`).
    activation_monitor: float = 5.0
    # ocirt: how long ACTIVATE waits for a new container with a health check to turn
    # healthy, when the image's start period is shorter.
    activation_timeout: float = 60.0
    # ocirt: container changes within this window make one current-state message.
    republish_delay: float = 0.5
