"""The config's enums read from text, shared by the Ditto and Kanto forms. Pure: no I/O.

Empty text means "not set" and gives Kanto's default. Text is matched in either case and
with - or _ (docs/kanto-compatibility.md decision 4). Unknown text gives the model's default plus a
`Finding` carrying Kanto's message, ranked where Kanto's validation would report it.
"""

from __future__ import annotations

from ocirt.config import validation as rules
from ocirt.config.model import (
    LogDriver,
    LogMode,
    NetworkMode,
    PortProtocol,
    Propagation,
    RestartPolicyType,
)
from ocirt.config.reader import parse_enum
from ocirt.config.validation import Finding


def network_mode(raw: str, pending: list[Finding]) -> NetworkMode:
    mode = parse_enum(NetworkMode, raw) if raw else NetworkMode.BRIDGE
    if mode is None:
        pending.append(Finding((rules.NETWORK, 0), f"unsupported network mode {raw}"))
        return NetworkMode.BRIDGE
    return mode


def propagation(raw: str, index: int, pending: list[Finding]) -> Propagation:
    mode = parse_enum(Propagation, raw) if raw else Propagation.RPRIVATE
    if mode is None:
        # Kanto silently uses rprivate here; ocirt refuses the unknown mode
        # (docs/kanto-compatibility.md decision 4).
        pending.append(
            Finding(
                (rules.MOUNTS, index, 1),
                "propagation mode must be set to one of the supported modes",
            )
        )
        return Propagation.RPRIVATE
    return mode


def protocol(raw: str, index: int, pending: list[Finding]) -> PortProtocol:
    proto = parse_enum(PortProtocol, raw) if raw else PortProtocol.TCP
    if proto is None:
        # Kanto passes any text on and fails only at start; the model knows tcp and udp.
        pending.append(
            Finding((rules.NETWORK, 3, index), f"unsupported port mapping protocol {raw}")
        )
        return PortProtocol.TCP
    return proto


def log_driver(raw: str, pending: list[Finding]) -> LogDriver:
    driver = parse_enum(LogDriver, raw) if raw else LogDriver.JSON_FILE
    if driver is None:
        pending.append(Finding((rules.LOG, 0), "unsupported log driver configuration"))
        return LogDriver.JSON_FILE
    return driver


def log_mode(raw: str, pending: list[Finding]) -> LogMode:
    mode = parse_enum(LogMode, raw) if raw else LogMode.BLOCKING
    if mode is None:
        pending.append(Finding((rules.LOG, 4), "unsupported log mode configuration"))
        return LogMode.BLOCKING
    return mode


def restart_type(raw: str, pending: list[Finding]) -> RestartPolicyType:
    """A given restart policy must name its type: Kanto only defaults a missing policy."""
    policy_type = parse_enum(RestartPolicyType, raw) if raw else None
    if policy_type is None:
        pending.append(Finding((rules.RESTART, 0), f"unsupported restart policy type {raw}"))
        return RestartPolicyType.UNLESS_STOPPED
    return policy_type
