"""The port of a feature that publishes on the twin beside the container features. No I/O.

The things client calls it on its publisher thread, so what such a feature sends is
ordered with the container features' updates: `republish` at every bootstrap,
`on_event` for every manager event, and whatever the feature hands to the `post`
function it was bound to (built against the current twin when its turn comes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ocirt.manager.types import Event
from ocirt.things.protocol import Outbound
from ocirt.things.twin import Twin

Build = Callable[[Twin], list[Outbound]]


class TwinFeature(Protocol):
    def bind(self, post: Callable[[Build], None], /) -> None: ...

    def republish(self, twin: Twin, /) -> list[Outbound]: ...

    def on_event(self, twin: Twin, event: Event, /) -> list[Outbound]: ...

    def close(self) -> None: ...
