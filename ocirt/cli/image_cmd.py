"""`ocirt image pull|list|remove|load|save|encrypt`: argument parsing and output only.

Settings come from flags until the daemon config is wired in. Errors print their
message and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

HELP = "manage images: pull, list, remove, load, save, encrypt"
DEFAULT_HOME = "/var/lib/container-management"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", default=DEFAULT_HOME, help="ocirt home dir (manager.home_dir)")
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=None,
        metavar="HOST[:PORT]",
        help="plain HTTP / unverified TLS registry (repeatable; default: localhost)",
    )
    sub = parser.add_subparsers(dest="image_command", required=True)
    pull = sub.add_parser("pull", help="pull an image from its registry")
    pull.add_argument("reference")
    pull.add_argument("--dec-key", action="append", default=[], help="decryption key file[:pw]")
    pull.add_argument("--dec-recipient", action="append", default=[], help="pkcs7:<cert>")
    sub.add_parser("list", help="list images")
    remove = sub.add_parser("remove", help="remove images")
    remove.add_argument("references", nargs="+")
    load = sub.add_parser("load", help="import an OCI layout dir or tar")
    load.add_argument("path", type=Path)
    load.add_argument("--name", help="image name for entries that only carry a tag")
    save = sub.add_parser("save", help="export images as an OCI layout dir or .tar")
    save.add_argument("output", type=Path)
    save.add_argument("references", nargs="+")
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


def run(args: argparse.Namespace) -> int:
    if args.image_command == "encrypt":
        return _encrypt(args)  # works on layouts only: no image store to open
    from ocirt.errors import OcirtError
    from ocirt.image.registry.auth import RegistryAccess
    from ocirt.image.service import ImageService, Progress

    insecure = args.insecure_registry if args.insecure_registry is not None else ["localhost"]
    service = ImageService(Path(args.home), RegistryAccess(insecure=frozenset(insecure)))
    try:
        if args.image_command == "pull":
            keys = None
            if args.dec_key or args.dec_recipient:
                from ocirt.image.service import load_decrypt_keys

                keys = load_decrypt_keys(args.dec_key, args.dec_recipient)
            lock = threading.Lock()
            tty = sys.stderr.isatty()

            def show(p: Progress) -> None:
                if tty:
                    with lock:
                        sys.stderr.write(
                            f"\r{p.layer.hex[:12]}: {_human(p.done)}/{_human(p.total)}\x1b[K"
                        )

            image = service.pull(args.reference, keys, show)
            if tty:
                sys.stderr.write("\r\x1b[K")
            print(f"{image.reference} {image.digest}")
        elif args.image_command == "list":
            print(f"{'REFERENCE':<60} {'DIGEST':<19} {'SIZE':>9}")
            for image in service.images():
                print(f"{image.reference:<60} {image.digest.hex[:12]:<19} {_human(image.size):>9}")
        elif args.image_command == "remove":
            for reference in args.references:
                service.remove(reference)
                print(reference)
        elif args.image_command == "load":
            for image in service.load(args.path, args.name):
                print(f"{image.reference} {image.digest}")
        elif args.image_command == "save":
            service.save(args.references, args.output)
    except OcirtError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    return 0
