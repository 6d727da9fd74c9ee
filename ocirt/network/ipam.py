"""Container addresses leased from the bridge's range (`fcidr4`). Does I/O (one JSON file).

Leases live in `<state_dir>/leases.json`, written atomically after every change, so an
address is never handed out twice, even across a crash. The choice of the next address is
the pure `next_free`: round-robin after the last one leased, as CNI's host-local does, so a
just-released address is not reused at once (late packets for the old container).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Set
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ocirt.errors import NetworkError
from ocirt.network.statefile import read_json, write_json

LEASES_FILE = "leases.json"


def next_free(
    pool: IPv4Network,
    subnet: IPv4Network,
    taken: Set[IPv4Address],
    last: IPv4Address | None,
) -> IPv4Address | None:
    """The first free host address of `pool` after `last`, wrapping around; None if full.

    The network and broadcast addresses of the bridge subnet are never leased, nor any of
    `taken` (leases, the bridge address and the gateway).
    """
    first = int(pool.network_address)
    size = pool.num_addresses
    start = (int(last) - first + 1) % size if last is not None and last in pool else 0
    excluded = {subnet.network_address, subnet.broadcast_address}
    for step in range(size):
        candidate = IPv4Address(first + (start + step) % size)
        if candidate not in taken and candidate not in excluded:
            return candidate
    return None


class Ipam:
    """Leases of one network. Thread-safe; one instance per state file.

    A lease file that cannot be read (garbled by a power cut, a bad flash page) does not
    stop the network: the leases start empty, `damage` says why, and the owner rebuilds
    them from what is really in use (`restore`) before leasing anything.
    """

    def __init__(
        self,
        state_dir: Path,
        pool: IPv4Network,
        subnet: IPv4Network,
        reserved: Iterable[IPv4Address],
    ) -> None:
        self._path = Path(state_dir) / LEASES_FILE
        self._pool = pool
        self._subnet = subnet
        self._reserved = frozenset(reserved)
        self._lock = threading.Lock()
        self._leases: dict[str, IPv4Address] = {}
        self._last: IPv4Address | None = None
        # Seen in use on the bridge by no known container (a rebuild): never leased.
        self._in_use: frozenset[IPv4Address] = frozenset()
        self.damage: str | None = None
        self.existed = self._path.exists()
        try:
            self._load()
        except NetworkError as exc:
            self.damage = exc.message
            self._leases, self._last = {}, None

    @property
    def path(self) -> Path:
        return self._path

    def _load(self) -> None:
        raw = read_json(self._path)
        if raw is None:
            return
        if not isinstance(raw, dict) or not isinstance(raw.get("leases"), dict):
            raise NetworkError(f"malformed lease file {self._path}")
        if raw.get("pool") != str(self._pool):
            # The range changed (new settings or a subnet now routed elsewhere): old leases
            # cannot be valid addresses any more, and their containers get new ones.
            return
        try:
            self._leases = {str(cid): IPv4Address(str(ip)) for cid, ip in raw["leases"].items()}
            last = raw.get("last")
            self._last = IPv4Address(str(last)) if last else None
        except ValueError as exc:
            raise NetworkError(f"malformed lease file {self._path}: {exc}") from exc

    def leases(self) -> dict[str, IPv4Address]:
        with self._lock:
            return dict(self._leases)

    def restore(
        self, leases: Mapping[str, IPv4Address], in_use: Iterable[IPv4Address] = ()
    ) -> dict[str, IPv4Address]:
        """Replace the leases with ``leases`` (what is known to be in use), keeping only
        addresses of the pool, one container per address; saved at once. ``in_use`` are
        addresses seen on the bridge without a known owner: never leased by this process.
        The next new address comes after the highest one. Returns the leases kept."""
        with self._lock:
            kept: dict[str, IPv4Address] = {}
            owners: dict[IPv4Address, str] = {}
            for cid, ip in leases.items():
                if ip in self._pool and ip not in self._reserved and ip not in owners:
                    kept[cid] = ip
                    owners[ip] = cid
            self._leases = kept
            self._in_use = frozenset(in_use) - set(kept.values())
            self._last = max(kept.values(), default=None)
            self._save()
            self.damage = None
            return dict(kept)

    def _save(self) -> None:
        write_json(
            self._path,
            {
                "pool": str(self._pool),
                "last": str(self._last) if self._last else None,
                "leases": {cid: str(ip) for cid, ip in sorted(self._leases.items())},
            },
        )

    def lease(self, container_id: str) -> IPv4Address:
        """The container's address: its existing lease, or a new one."""
        with self._lock:
            existing = self._leases.get(container_id)
            if existing is not None:
                return existing
            taken = set(self._leases.values()) | self._reserved | self._in_use
            address = next_free(self._pool, self._subnet, taken, self._last)
            if address is None:
                raise NetworkError(f"no free address left in {self._pool}")
            self._leases[container_id] = address
            self._last = address
            self._save()
            return address

    def release(self, container_id: str) -> None:
        with self._lock:
            if self._leases.pop(container_id, None) is not None:
                self._save()

    def reconcile(self, known_ids: Set[str]) -> set[str]:
        """Release the leases of containers that no longer exist; returns their ids."""
        with self._lock:
            stale = set(self._leases) - set(known_ids)
            for cid in stale:
                del self._leases[cid]
            if stale:
                self._save()
            return stale
