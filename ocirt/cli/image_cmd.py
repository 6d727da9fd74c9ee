"""`ocirt image pull|list|remove|load|save`: argument parsing and output only.

Settings come from flags until the daemon config is wired in. Errors print their
message and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

HELP = "manage images: pull, list, remove, load, save"
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


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1024
    return f"{size}B"


def run(args: argparse.Namespace) -> int:
    from ocirt.errors import OcirtError
    from ocirt.image.auth import RegistrySettings
    from ocirt.image.service import ImageService, Progress

    insecure = args.insecure_registry if args.insecure_registry is not None else ["localhost"]
    service = ImageService(Path(args.home), RegistrySettings(insecure=frozenset(insecure)))
    try:
        if args.image_command == "pull":
            keys = None
            if args.dec_key or args.dec_recipient:
                from ocirt.image.ocicrypt import load_decrypt_keys

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
