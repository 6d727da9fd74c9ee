"""`ocirt create [options] IMAGE [COMMAND...]` or `ocirt create -f FILE`.

Flags follow kanto-cm's (docs/kanto-compatibility.md §8). They are turned into a Ditto
createWithConfig value, so the daemon validates a CLI create exactly as a cloud one.
`-f` takes a container in Kanto's JSON format (a deployment descriptor).
"""

from __future__ import annotations

import argparse
import re

from ocirt.cli.common import CliError, add_connection_args, call, guarded, print_json

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HELP = "Create a container from an image (does not start it unless --start)."

_PORT = re.compile(
    r"^(?:(?P<ip>[0-9.]+):)?(?P<hp>\d+)(?:-(?P<hpe>\d+))?:(?P<cp>\d+)(?:/(?P<proto>tcp|udp))?$"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("-f", "--file", help="a container JSON file in Kanto's format (alone)")
    parser.add_argument("-n", "--name", default="", help="container name")
    parser.add_argument("--t", dest="tty", action="store_true", help="allocate a TTY")
    parser.add_argument("--i", dest="stdin", action="store_true", help="keep stdin open")
    parser.add_argument("--privileged", action="store_true", help="all capabilities and devices")
    parser.add_argument(
        "--rp", default="", help="restart policy: no, always, unless-stopped, on-failure"
    )
    parser.add_argument("--rp-cnt", type=int, default=0, help="max retry count (on-failure)")
    parser.add_argument("--rp-to", type=float, default=0, help="retry timeout seconds (on-failure)")
    parser.add_argument("--devices", action="append", default=[], help="host:container[:rwm]")
    parser.add_argument("--ports", action="append", default=[], help="[ip:]hp[-hpEnd]:cp[/proto]")
    parser.add_argument("--network", default="", help="bridge or host")
    parser.add_argument("--hosts", action="append", default=[], help="extra host name:ip")
    parser.add_argument("--mp", action="append", default=[], help="source:dest[:propagation]")
    parser.add_argument("--e", dest="env", action="append", default=[], help="VAR=value")
    parser.add_argument("--cap-add", action="append", default=[], help="extra capability")
    parser.add_argument("--log-driver", default="", help="json-file or none")
    parser.add_argument("--log-max-files", type=int, default=0, help="log files kept")
    parser.add_argument("--log-max-size", default="", help="log file size before rotation")
    parser.add_argument("--log-path", default="", help="log root directory")
    parser.add_argument("--log-mode", default="", help="blocking or non-blocking")
    parser.add_argument("--log-max-buffer-size", default="", help="buffer of non-blocking mode")
    parser.add_argument("-m", "--memory", default="", help="memory limit, e.g. 200M")
    parser.add_argument("--memory-reservation", default="", help="soft memory limit")
    parser.add_argument("--memory-swap", default="", help="memory plus swap; -1 = unlimited")
    parser.add_argument("--dec-keys", action="append", default=[], help="key file[:password]")
    parser.add_argument("--dec-recipients", action="append", default=[], help="pkcs7:cert")
    parser.add_argument("--start", action="store_true", help="start it once created")
    parser.add_argument("image", nargs="?", help="image reference")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def _split(items: list[str]) -> list[str]:
    return [part for item in items for part in item.split(",") if part]


def _port(text: str) -> dict[str, Any]:
    match = _PORT.match(text)
    if match is None:
        raise CliError(f"invalid port mapping {text!r}: use [ip:]hp[-hpEnd]:cp[/proto]")
    port: dict[str, Any] = {"containerPort": int(match["cp"]), "hostPort": int(match["hp"])}
    if match["hpe"]:
        port["hostPortEnd"] = int(match["hpe"])
    if match["ip"]:
        port["hostIP"] = match["ip"]
    if match["proto"]:
        port["proto"] = match["proto"]
    return port


def _device(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise CliError(f"invalid device {text!r}: use host:container[:rwm]")
    device = {"pathOnHost": parts[0], "pathInContainer": parts[1]}
    if len(parts) == 3:
        device["cgroupPermissions"] = parts[2]
    return device


def _mount(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise CliError(f"invalid mount {text!r}: use source:destination[:propagation]")
    mount = {"source": parts[0], "destination": parts[1]}
    if len(parts) == 3:
        mount["propagationMode"] = parts[2]
    return mount


def create_value(args: argparse.Namespace) -> dict[str, Any]:
    """The createWithConfig value the flags describe (empty members left out)."""
    config: dict[str, Any] = {
        "env": args.env,
        "cmd": args.command,
        "privileged": args.privileged,
        "extraHosts": _split(args.hosts),
        "extraCapabilities": _split(args.cap_add),
        "networkMode": args.network,
        "openStdin": args.stdin,
        "tty": args.tty,
        "mountPoints": [_mount(m) for m in _split(args.mp)],
        "devices": [_device(d) for d in _split(args.devices)],
        "portMappings": [_port(p) for p in _split(args.ports)],
    }
    if args.rp:
        config["restartPolicy"] = {
            "type": args.rp, "maxRetryCount": args.rp_cnt, "retryTimeout": args.rp_to
        }  # fmt: skip
    log = {
        "type": args.log_driver,
        "maxFiles": args.log_max_files,
        "maxSize": args.log_max_size,
        "rootDir": args.log_path,
        "mode": args.log_mode,
        "maxBufferSize": args.log_max_buffer_size,
    }
    if any(log.values()):
        config["log"] = {k: v for k, v in log.items() if v}
    resources = {
        "memory": args.memory,
        "memoryReservation": args.memory_reservation,
        "memorySwap": args.memory_swap,
    }
    if any(resources.values()):
        config["resources"] = {k: v for k, v in resources.items() if v}
    if args.dec_keys or args.dec_recipients:
        config["decryption"] = {"keys": args.dec_keys, "recipients": args.dec_recipients}
    value: dict[str, Any] = {
        "imageRef": args.image,
        "start": args.start,
        "config": {k: v for k, v in config.items() if v},
    }
    if args.name:
        value["name"] = args.name
    return value


# Options that do not go with -f (kanto-cm: "-f must be used alone"); --start does: the
# container is created and started, as with flags.
_NOT_WITH_FILE = (
    "name", "tty", "stdin", "privileged", "rp", "rp_cnt", "rp_to", "devices", "ports",
    "network", "hosts", "mp", "env", "cap_add", "log_driver", "log_max_files",
    "log_max_size", "log_path", "log_mode", "log_max_buffer_size", "memory",
    "memory_reservation", "memory_swap", "dec_keys", "dec_recipients",
)  # fmt: skip
# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def file_request(args: argparse.Namespace) -> dict[str, Any]:
    """The create request of `create -f FILE [--start]`, with kanto-cm's refusals."""
    if any(getattr(args, dest) for dest in _NOT_WITH_FILE):
        raise CliError("no other flags are expected when creating a container from file")
    if args.image or args.command:
        raise CliError("no arguments are expected when creating a container from file")
    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read(1024 * 1024 + 1)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise CliError(f"cannot read {args.file}: not UTF-8 text") from None
    return {"descriptor": text, "start": args.start}


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.file:
            result = call(args, "create", file_request(args))
        else:
            if not args.image:
                raise CliError("container image argument is expected")
            result = call(args, "create", {"value": create_value(args)})
        if args.json:
            print_json(result)
        else:
            print(result["id"])
        state = result.get("state") or {}
        if args.start and state.get("status") != "RUNNING" and state.get("error"):
            # Created, but the start failed (Kanto's rule, ocirt.manager.frontend).
            import sys

            error = state["error"]
            print(f"the container was created but did not start: {error}", file=sys.stderr)
            return 1
        return 0

    return guarded(body)
