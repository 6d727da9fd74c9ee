"""A recording network for the manager's unit tests: both modes, scripted failures."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ocirt.config.model import ContainerConfig, NetworkMode
from ocirt.errors import OcirtError
from ocirt.manager.ports import Attached
from ocirt.spec.facts import NetworkAttachment


class FakeNetwork:
    """The manager's `NetworkProvider` port, writing only the container's /etc files."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.attached: set[str] = set()
        self._failures: dict[str, list[OcirtError]] = {}

    def fail(self, verb: str, error: OcirtError) -> None:
        """The next call of `verb` raises `error`."""
        self._failures.setdefault(verb, []).append(error)

    def _call(self, verb: str, *args: object) -> None:
        self.calls.append((verb, *args))
        queued = self._failures.get(verb)
        if queued:
            raise queued.pop(0)

    def planned(self, container_id: str, config: ContainerConfig) -> NetworkAttachment:
        self._call("planned", container_id)
        if config.network_mode is NetworkMode.HOST:
            return NetworkAttachment.host()
        return NetworkAttachment.netns(f"/var/run/netns/fake-{container_id}")

    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        attachment = self.planned(container_id, config)
        self._call("attach", container_id)
        hosts = files_dir / "hosts"
        hosts.write_text("127.0.0.1\tlocalhost\n")
        self.attached.add(container_id)
        return Attached(attachment, hosts=hosts)

    def detach(self, container_id: str) -> None:
        self._call("detach", container_id)
        self.attached.discard(container_id)

    def reconcile(self, known_ids: Iterable[str]) -> None:
        known = set(known_ids)
        self._call("reconcile", frozenset(known))
        self.attached &= known
