"""A scripted SampleSource and container views for the collector and feature tests."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.config.state import Status
from ocirt.manager.types import ContainerState, ContainerView
from ocirt.metrics.cgroups import Group
from ocirt.metrics.formulas import Counters, Memory, Sample


def view(cid: str, status: Status = Status.RUNNING, pid: int = 100) -> ContainerView:
    return ContainerView(
        id=ContainerId(cid),
        name=f"name-{cid}",
        image_ref="img",
        config=ContainerConfig(),
        created_at="",
        state=ContainerState(status=status, pid=pid),
    )


@dataclass
class FakeSource:
    """Per pid: CPU ns that grows by `step` at each read; fixed other figures."""

    cpu: dict[int, int] = field(default_factory=dict)
    step: dict[int, int] = field(default_factory=dict)
    system: int = 0
    system_step: int = 1_000_000_000
    reads: list[tuple[int, frozenset[Group]]] = field(default_factory=list)

    def sample(self, pid: int, groups: Collection[Group]) -> Sample | None:
        self.reads.append((pid, frozenset(groups)))
        if pid not in self.cpu:
            return None
        full = Sample(
            cpu_ns=self.cpu[pid],
            memory=Memory(usage=300, inactive_file=100, limit=1000),
            io=Counters(1, 2),
            net=Counters(3, 4),
            pids=2,
        )
        if Group.CPU in groups:
            self.cpu[pid] += self.step.get(pid, 0)
        return replace(
            full,
            cpu_ns=full.cpu_ns if Group.CPU in groups else None,
            memory=full.memory if Group.MEMORY in groups else None,
            io=full.io if Group.IO in groups else None,
            net=full.net if Group.NET in groups else None,
            pids=full.pids if Group.PIDS in groups else None,
        )

    def system_cpu_ns(self) -> int:
        self.system += self.system_step
        return self.system

    def host_memory(self) -> int:
        return 4000

    def cpu_count(self) -> int:
        return 2
