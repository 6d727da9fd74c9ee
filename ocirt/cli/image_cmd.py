"""`ocirt image pull|list|remove|load|save|encrypt`: argument parsing and output only.

Every command but `encrypt` goes to the daemon over its local API: one image store, the
daemon's, with its registry settings (insecure registries, credentials, TLS) and its
decryption keys. Paths are made absolute here, since the daemon reads and writes them.
`encrypt` works on OCI layouts (files) only and stays in this process. Errors print their
message and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ocirt.cli.common import add_connection_args

HELP = "manage images (the daemon's store): pull, list, remove, load, save, encrypt"


def _connection_args_again(parser: argparse.ArgumentParser) -> None:
    """--socket, --timeout and --json after the subcommand too (`ocirt image list --json`).
    SUPPRESS keeps the values given before it: a subparser's defaults would replace them."""
    parser.add_argument("--socket", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    sub = parser.add_subparsers(dest="image_command", required=True)
    pull = sub.add_parser("pull", help="pull an image from its registry into the daemon's store")
    pull.add_argument("reference")
    pull.add_argument(
        "--dec-key", action="append", default=[], help="decryption key file[:password]"
    )
    pull.add_argument("--dec-recipient", action="append", default=[], help="pkcs7:<cert file>")
    listing = sub.add_parser("list", help="list images")
    remove = sub.add_parser("remove", help="remove images")
    remove.add_argument("references", nargs="+")
    remove.add_argument(
        "-f", "--force", action="store_true", help="remove even if a container uses it"
    )
    load = sub.add_parser("load", help="import an OCI layout dir or tar")
    load.add_argument("path", type=Path)
    load.add_argument("--name", help="image name for entries that only carry a tag")
    save = sub.add_parser("save", help="export images as an OCI layout dir or .tar")
    save.add_argument("output", type=Path)
    save.add_argument("references", nargs="+")
    for command in (pull, listing, remove, load, save):
        _connection_args_again(command)
    encrypt = sub.add_parser(
        "encrypt", help="encrypt the layers of an OCI layout (dir or tar) into an OCI layout dir"
    )
    encrypt.add_argument(
        "--recipient",
        action="append",
        required=True,
        metavar="jwe:FILE|pkcs7:FILE",
        help="public key (jwe) or x509 certificate (jwe, pkcs7); repeatable",
    )
    encrypt.add_argument(
        "--encrypt-layer",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="layer index to encrypt, -1 = last (repeatable; default: every layer)",
    )
    encrypt.add_argument("source", metavar="SRC[:TAG]")
    encrypt.add_argument("dest", metavar="DEST[:TAG]", help="TAG defaults to SRC's, or latest")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1024
    return f"{size}B"


def _layout_arg(text: str) -> tuple[Path, str | None]:
    """Split `PATH[:TAG]` at the first colon, as skopeo's `oci:` transport does."""
    from ocirt.errors import InvalidArgument

    path, sep, tag = text.partition(":")
    if not path or (sep and not tag):
        raise InvalidArgument(f"invalid layout {text!r}: want PATH[:TAG]")
    return Path(path), tag or None


def _encrypt(args: argparse.Namespace) -> int:
    from ocirt.errors import OcirtError
    from ocirt.image.ocicrypt.encrypt import load_encrypt_recipients
    from ocirt.image.ocicrypt.encrypt_layout import encrypt_layout

    try:
        src, src_tag = _layout_arg(args.source)
        dest, dest_tag = _layout_arg(args.dest)
        recipients = load_encrypt_recipients(args.recipient)
        tag = dest_tag or src_tag or "latest"
        digest = encrypt_layout(src, src_tag, dest, tag, recipients, args.encrypt_layer)
    except OcirtError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    print(f"{dest}:{tag} {digest}")
    return 0


def _key_paths(keys: list[str]) -> list[str]:
    """`file[:password]` with the file made absolute (the daemon opens it)."""
    out = []
    for key in keys:
        path, sep, password = key.partition(":")
        out.append(f"{Path(path).absolute()}{sep}{password}" if path else key)
    return out


def _recipient_paths(recipients: list[str]) -> list[str]:
    out = []
    for recipient in recipients:
        scheme, sep, path = recipient.partition(":")
        out.append(f"{scheme}:{Path(path).absolute()}" if sep and path else recipient)
    return out


def _pull(args: argparse.Namespace) -> Any:
    from ocirt.cli.client import stream
    from ocirt.errors import Unavailable

    params = {
        "reference": args.reference,
        "keys": _key_paths(args.dec_key),
        "recipients": _recipient_paths(args.dec_recipient),
    }
    tty = sys.stderr.isatty()
    try:
        for message in stream(
            Path(args.socket), "image.pull", params, timeout=None, connect_timeout=args.timeout
        ):
            if "ok" in message:
                return message.get("result")
            progress = message.get("progress")
            if tty and isinstance(progress, dict):
                layer = str(progress.get("layer", "")).partition(":")[2][:12]
                done, total = int(progress.get("done", 0)), int(progress.get("total", 0))
                sys.stderr.write(f"\r{layer}: {_human(done)}/{_human(total)}\x1b[K")
                sys.stderr.flush()
    finally:
        if tty:
            sys.stderr.write("\r\x1b[K")
    raise Unavailable("the daemon closed the connection without an answer")


def _remote(args: argparse.Namespace) -> int:
    from ocirt.cli.common import call, print_json
    from ocirt.cli.errors import CliError

    status = 0
    command = args.image_command
    if command == "pull":
        image = _pull(args)
        if args.json:
            print_json(image)
        else:
            print(f"{image['reference']} {image['digest']}")
    elif command == "list":
        images = call(args, "image.list", {})
        if args.json:
            print_json(images)
            return 0
        print(f"{'REFERENCE':<60} {'DIGEST':<19} {'SIZE':>9}")
        for image in images:
            if "damaged" in image:
                continue
            digest = str(image["digest"]).partition(":")[2][:12]
            print(f"{image['reference']:<60} {digest:<19} {_human(int(image['size'])):>9}")
        for image in images:
            if "damaged" in image:
                # Removable with `ocirt image remove <record>`.
                what = image["reference"] or image["record"]
                print(f"{what:<60} DAMAGED ({image['record']}): {image['damaged']}")
    elif command == "remove":
        for reference in args.references:
            try:
                removed = call(args, "image.remove", {"reference": reference, "force": args.force})
            except CliError as exc:
                print(f"Error: {exc.message}", file=sys.stderr)
                status = 1
                continue
            print(removed["reference"])
    elif command == "load":
        loaded = call(args, "image.load", {"path": str(args.path.absolute()), "name": args.name})
        if args.json:
            print_json(loaded)
        for image in loaded if not args.json else ():
            print(f"{image['reference']} {image['digest']}")
    elif command == "save":
        output = str(args.output.absolute())
        call(args, "image.save", {"output": output, "references": args.references})
    return status


def run(args: argparse.Namespace) -> int:
    if args.image_command == "encrypt":
        return _encrypt(args)  # works on layouts only: no image store to open
    from ocirt.cli.common import guarded

    return guarded(lambda: _remote(args))
