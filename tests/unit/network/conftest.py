"""Recording fakes of the network ports, for unit tests of the effectful modules.

- `FakeKernel`: the far end of a NETLINK_ROUTE socket. It answers ocirt's requests with
  the replies recorded from a real kernel (data/*.hex, see hack/record_netlink.py), keeps a
  small table of links so that created links can be found again, acknowledges changes, and
  records every request. Installed in place of `socket.socket` inside `netlink.py` only.
- `FakeNft`: `subprocess.run` for `nft -j`, keeping one `table ip ocirt` in memory.
- `FakeIptc`: the part of python-iptables `iptables.py` uses, with commit semantics.
- `RecordingFirewall`: the `Firewall` port itself, for `bridge.py`.
"""

from __future__ import annotations

import errno
import itertools
import json
import socket
import struct
import subprocess
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ocirt.network import netlink
from ocirt.network import rtnetlink as rt
from ocirt.network.firewall import Backend
from ocirt.network.plan import FirewallPlan, Rule, owner_of

DATA = Path(__file__).parent / "data"
HDR = struct.Struct("=IHHII")


def recorded_messages(name: str) -> list[tuple[int, int, bytes]]:
    """(type, flags, payload) of every message recorded in data/<name>.hex."""
    found = []
    for line in (DATA / f"{name}.hex").read_text().split():
        data = bytes.fromhex(line)
        offset = 0
        while offset < len(data):
            length, kind, flags, _seq, _pid = HDR.unpack_from(data, offset)
            found.append((kind, flags, data[offset + HDR.size : offset + length]))
            offset += (length + 3) & ~3
    return found


def frame(kind: int, flags: int, payload: bytes, seq: int) -> bytes:
    length = HDR.size + len(payload)
    return HDR.pack(length, kind, flags, seq, 0) + payload + bytes(-length % 4)


def ack(seq: int, error: int = 0, message: str = "") -> bytes:
    flags = rt.NLM_F_CAPPED
    payload = struct.pack("=i", -error) + HDR.pack(HDR.size, 0, 0, seq, 0)
    if message:
        flags |= rt.NLM_F_ACK_TLVS
        payload += rt.str_attr(rt.NLMSGERR_ATTR_MSG, message)
    return frame(rt.NLMSG_ERROR, flags, payload, seq)


def link_payload(index: int, name: str, *, kind: str | None, mtu: int, up: bool) -> bytes:
    body = rt.ifinfomsg(index=index, flags=rt.IFF_UP if up else 0)
    body += rt.ifname_attr(name) + rt.u32_attr(rt.IFLA_MTU, mtu)
    if kind is not None:
        body += rt.attr(rt.IFLA_LINKINFO, rt.str_attr(rt.IFLA_INFO_KIND, kind))
    return body


class FakeKernel:
    """One network namespace's rtnetlink, as recorded, plus links created through it."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int, bytes]] = []  # type, flags, body after nlmsghdr
        self.sockets: list[FakeKernel.Socket] = []
        # Per request type: errnos to answer with, in turn (then plain acks again).
        self.fail: dict[int, list[int]] = {}
        # Extra datagrams sent before the answer to the next request (stale replies...).
        self.before_next: list[bytes] = []
        # Dumps answered with NLM_F_DUMP_INTR this many times first.
        self.interrupted_dumps = 0
        # The payloads of the links, by name: the recorded dump, then what was added.
        self.links: dict[str, bytes] = {}
        for kind, _flags, payload in recorded_messages("getlink_dump"):
            if kind == rt.RTM_NEWLINK:
                self.links[_name_of(payload)] = payload
        self._next_index = itertools.count(100)

    def index_of(self, name: str) -> int:
        return int(struct.unpack_from("=i", self.links[name], 4)[0])

    def sent(self, kind: int) -> list[bytes]:
        return [body for t, _flags, body in self.requests if t == kind]

    class Socket:
        def __init__(self, kernel: FakeKernel, family: int, kind: int, proto: int) -> None:
            assert family == socket.AF_NETLINK and proto == rt.NETLINK_ROUTE
            self.kernel = kernel
            self.options: dict[tuple[int, int], int] = {}
            self.pending: list[bytes] = []
            self.closed = False
            kernel.sockets.append(self)

        def setsockopt(self, level: int, option: int, value: int) -> None:
            self.options[(level, option)] = value

        def bind(self, address: tuple[int, int]) -> None:
            assert address == (0, 0)

        def close(self) -> None:
            self.closed = True

        def sendto(self, data: bytes, address: tuple[int, int]) -> int:
            assert not self.closed
            length, kind, flags, seq, _pid = HDR.unpack_from(data)
            assert length == len(data)
            body = data[HDR.size :]
            self.kernel.requests.append((kind, flags, body))
            self.pending += self.kernel.before_next
            self.kernel.before_next = []
            self.pending += self.kernel.answer(kind, flags, body, seq)
            return len(data)

        def recv_into(self, buffer: bytearray, size: int, flags: int) -> int:
            assert flags == socket.MSG_TRUNC
            data = self.pending.pop(0)
            buffer[: min(len(data), size)] = data[:size]
            return len(data)  # MSG_TRUNC: the real length, even when it did not fit

    def answer(self, kind: int, flags: int, body: bytes, seq: int) -> list[bytes]:
        if self.fail.get(kind):
            error = self.fail[kind].pop(0)
            return [ack(seq, error, f"fake refusal of type {kind}")]
        if flags & rt.NLM_F_DUMP == rt.NLM_F_DUMP:
            return self._dump(kind, seq)
        if kind == rt.RTM_GETLINK:
            name = _name_of(body)
            if name not in self.links:
                return [ack(seq, errno.ENODEV)]
            return [frame(rt.RTM_NEWLINK, 0, self.links[name], seq), ack(seq)]
        if kind == rt.RTM_NEWLINK:
            name = _name_of(body)
            info = dict(rt.attributes(dict(rt.attributes(body[16:]))[rt.IFLA_LINKINFO]))
            link_kind = info[rt.IFLA_INFO_KIND].rstrip(b"\0").decode()
            self.links[name] = link_payload(
                next(self._next_index), name, kind=link_kind, mtu=1500, up=False
            )
        if kind == rt.RTM_DELLINK:
            index = struct.unpack_from("=i", body, 4)[0]
            self.links = {n: p for n, p in self.links.items() if self.index_of(n) != index}
        return [ack(seq)]

    def _dump(self, kind: int, seq: int) -> list[bytes]:
        flags = rt.NLM_F_MULTI
        if self.interrupted_dumps:
            self.interrupted_dumps -= 1
            flags |= rt.NLM_F_DUMP_INTR
        if kind == rt.RTM_GETLINK:
            payloads = list(self.links.values())
        else:
            name = {rt.RTM_GETADDR: "getaddr_dump", rt.RTM_GETROUTE: "getroute_dump"}[kind]
            payloads = [p for t, _f, p in recorded_messages(name) if t != rt.NLMSG_DONE]
        reply_type = {
            rt.RTM_GETLINK: rt.RTM_NEWLINK,
            rt.RTM_GETADDR: rt.RTM_NEWADDR,
            rt.RTM_GETROUTE: rt.RTM_NEWROUTE,
        }[kind]
        reply = b"".join(frame(reply_type, flags, p, seq) for p in payloads)
        done = frame(rt.NLMSG_DONE, rt.NLM_F_MULTI, struct.pack("=i", 0), seq)
        return [reply, done]


def _name_of(payload: bytes) -> str:
    attrs = dict(rt.attributes(payload[16:]))
    return attrs[rt.IFLA_IFNAME].split(b"\0", 1)[0].decode()


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    """A FakeKernel behind every socket `netlink.py` opens."""
    fake = FakeKernel()
    fake_socket_module = types.SimpleNamespace(
        socket=lambda family, kind, proto: FakeKernel.Socket(fake, family, kind, proto),
        AF_NETLINK=socket.AF_NETLINK,
        SOCK_RAW=socket.SOCK_RAW,
        SOCK_CLOEXEC=socket.SOCK_CLOEXEC,
        MSG_TRUNC=socket.MSG_TRUNC,
    )
    monkeypatch.setattr(netlink, "socket", fake_socket_module)
    return fake


# -- nft -------------------------------------------------------------------------------


class FakeNft:
    """`nft -j -f -` and `nft -j list table ip ocirt` over one in-memory table."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Any]] = []
        self.table: dict[str, list[dict[str, Any]]] | None = None  # chain -> rules
        self.handles = itertools.count(1)
        self.fail_next: str | None = None  # stderr of a failure to simulate
        self.raw_output: str | None = None  # printed instead of the listing

    def run(self, argv: list[str], input: str | None = None, **_: Any) -> Any:
        payload = json.loads(input) if input is not None else None
        self.calls.append((argv[1:], payload))
        if self.fail_next is not None:
            stderr, self.fail_next = self.fail_next, None
            return subprocess.CompletedProcess(argv, 1, "", stderr)
        if argv[1:] == ["-j", "list", "table", "ip", "ocirt"]:
            if self.table is None:
                return subprocess.CompletedProcess(
                    argv, 1, "", "Error: No such file or directory\nlist table ip ocirt"
                )
            if self.raw_output is not None:
                return subprocess.CompletedProcess(argv, 0, self.raw_output, "")
            return subprocess.CompletedProcess(argv, 0, json.dumps(self._listing()), "")
        assert argv[1:] == ["-j", "-f", "-"], argv
        for command in payload["nftables"]:
            self._apply(command)
        return subprocess.CompletedProcess(argv, 0, "", "")

    def _listing(self) -> dict[str, Any]:
        assert self.table is not None
        items: list[dict[str, Any]] = [{"metainfo": {"json_schema_version": 1}}]
        items += [{"table": {"family": "ip", "name": "ocirt"}}]
        items += [{"chain": {"name": name}} for name in self.table]
        items += [{"rule": rule} for rules in self.table.values() for rule in rules]
        return {"nftables": items}

    def _apply(self, command: dict[str, Any]) -> None:
        ((verb, what),) = command.items()
        ((kind, spec),) = what.items()
        if kind == "table":
            if verb == "add" and self.table is None:
                self.table = {}
            elif verb == "delete":
                self.table = None
            return
        assert self.table is not None, "no table ip ocirt"
        if kind == "chain":
            name = spec["name"]
            if verb == "add":
                self.table.setdefault(name, [])
            elif verb == "flush":
                self.table[name] = []
            elif verb == "delete":
                assert not self.table[name], "nft refuses to delete a chain with rules"
                del self.table[name]
            return
        assert kind == "rule"
        rules = self.table[spec["chain"]]
        if verb == "add":
            rules.append({**spec, "handle": next(self.handles)})
        elif verb == "delete":
            before = len(rules)
            rules[:] = [r for r in rules if r["handle"] != spec["handle"]]
            assert len(rules) == before - 1, "no rule with that handle"


@pytest.fixture
def nft(monkeypatch: pytest.MonkeyPatch) -> FakeNft:
    from ocirt.network import nftables

    fake = FakeNft()
    monkeypatch.setattr(nftables.subprocess, "run", fake.run)
    return fake


# -- python-iptables -------------------------------------------------------------------


class FakeIptc:
    """python-iptables as `iptables.py` uses it: tables of chains of rules, changed in a
    working copy that only `commit()` makes visible (as libiptc does)."""

    class IPTCError(Exception):
        pass

    class xtables:  # python-iptables spells it so
        class XTablesError(Exception):
            pass

    def __init__(self) -> None:
        # What the "kernel" holds: table -> chain -> rules.
        self.committed: dict[str, dict[str, list[Any]]] = {
            "nat": {"PREROUTING": [], "OUTPUT": [], "POSTROUTING": [], "INPUT": []},
            "filter": {"INPUT": [], "FORWARD": [], "OUTPUT": []},
        }
        self.commits = 0
        self.fail_commit: Exception | None = None
        outer = self

        class Match:
            def __init__(self, name: str) -> None:
                self.name = name
                self.comment: str | None = None

        class Rule:
            def __init__(self) -> None:
                self.matches: list[Match] = []
                self.target: Any = None
                self.protocol = self.src = self.dst = None
                self.in_interface = self.out_interface = None

            def create_match(self, name: str) -> Match:
                match = Match(name)
                self.matches.append(match)
                return match

            def create_target(self, name: str) -> Any:
                self.target = types.SimpleNamespace(name=name)
                return self.target

        class Table:
            def __init__(self, name: str) -> None:
                self.name = name
                self.autocommit = True
                self.work: dict[str, list[Any]] = {}
                self.refresh()

            def refresh(self) -> None:
                self.work = {c: list(r) for c, r in outer.committed[self.name].items()}

            def commit(self) -> None:
                if outer.fail_commit is not None:
                    raise outer.fail_commit
                outer.committed[self.name] = {c: list(r) for c, r in self.work.items()}
                outer.commits += 1

            @property
            def chains(self) -> list[Any]:
                return [Chain(self, name) for name in self.work]

            def create_chain(self, name: str) -> None:
                assert name not in self.work
                self.work[name] = []

            def delete_chain(self, name: str) -> None:
                assert not self.work[name], "iptables refuses to delete a chain with rules"
                del self.work[name]

        class Chain:
            def __init__(self, table: Table, name: str) -> None:
                self.table = table
                self.name = name

            @property
            def rules(self) -> list[Any]:
                return list(self.table.work[self.name])

            def insert_rule(self, rule: Any) -> None:
                self.table.work[self.name].insert(0, rule)

            def append_rule(self, rule: Any) -> None:
                self.table.work[self.name].append(rule)

            def delete_rule(self, rule: Any) -> None:
                self.table.work[self.name].remove(rule)

            def flush(self) -> None:
                self.table.work[self.name] = []

        self.Rule = Rule
        self.Table = Table
        self.Chain = Chain

    def rules(self, table: str, chain: str) -> list[Any]:
        return self.committed[table][chain]


@pytest.fixture
def iptc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeIptc:
    import sys

    from ocirt.network import iptables

    fake = FakeIptc()
    monkeypatch.setitem(sys.modules, "iptc", fake)
    monkeypatch.setattr(iptables, "XTABLES_LOCK", str(tmp_path / "xtables.lock"))
    return fake


# -- the port itself -------------------------------------------------------------------


class RecordingFirewall:
    """The Firewall port: rules kept by (bridge, owner), every call recorded."""

    backend = Backend.NFTABLES

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.rules: list[Rule] = []
        self.installed: set[str] = set()

    def install(self, plan: FirewallPlan) -> None:
        self.calls.append(("install", plan.bridge))
        self.installed.add(plan.bridge)
        self.remove_owner(plan.bridge, "base", record=False)
        self.rules += plan.rules

    def add_rules(self, rules: Sequence[Rule]) -> None:
        self.calls.append(("add_rules", tuple(rules)))
        self.rules += rules

    def remove_owner(self, bridge: str, owner: str, *, record: bool = True) -> None:
        if record:
            self.calls.append(("remove_owner", (bridge, owner)))
        self.rules = [r for r in self.rules if owner_of(bridge, r.comment) != owner]

    def owners(self, bridge: str) -> set[str]:
        return {o for r in self.rules if (o := owner_of(bridge, r.comment)) is not None}

    def listing(self, bridge: str) -> list[tuple[str, str]]:
        return [(r.chain, r.comment) for r in self.rules if owner_of(bridge, r.comment)]

    def uninstall(self, bridge: str) -> None:
        self.calls.append(("uninstall", bridge))
        self.rules = [r for r in self.rules if owner_of(bridge, r.comment) is None]
        self.installed.discard(bridge)


@pytest.fixture
def recording_firewall() -> Iterator[RecordingFirewall]:
    yield RecordingFirewall()
