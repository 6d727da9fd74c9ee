"""`ocirt spec`: print the runtime spec (config.json) ocirt would write for a config.

Argument parsing and output only; the facts come from the running host (capabilities,
rlimits, devices, hostname) and the paths follow `ocirt.spec.layout`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocirt.config.model import ContainerDefinition
    from ocirt.spec.facts import ImageConfig

HELP = "print the OCI runtime spec (config.json) ocirt would write for a container config"

EXIT_INVALID = 2
EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        type=Path,
        help="a createWithConfig value (or a whole Ditto message), just its `config` object, "
        "or a Kanto container/descriptor file (snake_case)",
    )
    parser.add_argument(
        "--image-config",
        type=Path,
        help="the image's config: a whole OCI/Docker image config blob or its `config` object",
    )
    parser.add_argument("--name", help="container name for Ditto input (default: the id)")
    parser.add_argument("--id", help="container id (default: the file's, else a new UUID)")
    parser.add_argument(
        "--meta-path",
        default=None,
        help="ocirt's meta path; the bundle is <meta-path>/containers/<id> "
        "(default /var/lib/container-management)",
    )
    parser.add_argument(
        "--netns",
        help="join this network namespace instead of the one the default bridge makes "
        "(/var/run/netns/ocirt-<hash of the bridge name>-<id>)",
    )


def _definition(raw: object, args: argparse.Namespace) -> ContainerDefinition:
    from ocirt.config import new_definition, parse_container_config, parse_create_with_config
    from ocirt.config.ditto import CreateRequest
    from ocirt.config.kanto import parse_persisted
    from ocirt.config.model import ContainerId

    new_id = args.id or str(uuid.uuid4())
    if isinstance(raw, dict) and "value" in raw and ("path" in raw or "topic" in raw):
        raw = raw["value"]  # a whole Ditto message
    if isinstance(raw, dict) and ({"container_id", "host_config", "image"} & raw.keys()):
        persisted = parse_persisted(raw, default_id=new_id).definition
        return replace(persisted, id=ContainerId(args.id)) if args.id else persisted
    if isinstance(raw, dict) and "imageRef" in raw:
        request = parse_create_with_config(raw)
    else:
        request = CreateRequest(
            image_ref="(config only)", start=False, config=parse_container_config(raw)
        )
    if args.name:
        request = replace(request, name=args.name)
    return new_definition(ContainerId(new_id), request)


def _image(path: Path | None) -> ImageConfig:
    from ocirt.config import load_json
    from ocirt.spec.facts import ImageConfig

    if path is None:
        return ImageConfig()
    raw = load_json(path.read_bytes())
    if isinstance(raw, dict) and ({"config", "rootfs", "architecture"} & raw.keys()):
        return ImageConfig.from_image_json(raw)
    return ImageConfig.from_oci_json(raw)


def _spec(args: argparse.Namespace) -> dict[str, object]:
    from ocirt.config import load_json
    from ocirt.config.model import NetworkMode
    from ocirt.manager import bundle
    from ocirt.network.plan import netns_path
    from ocirt.network.settings import DEFAULT_BRIDGE
    from ocirt.runtime import hostfacts
    from ocirt.spec import layout
    from ocirt.spec.facts import NetworkAttachment

    definition = _definition(load_json(args.config.read_bytes()), args)
    config = definition.config
    meta_path = args.meta_path or layout.DEFAULT_META_PATH
    if config.network_mode is NetworkMode.HOST:
        network = NetworkAttachment.host()
    else:
        # The name the default bridge gives the container's namespace at start.
        network = NetworkAttachment.netns(args.netns or netns_path(DEFAULT_BRIDGE, definition.id))
    # The manager's own assembly (`ocirt.manager.bundle`), so this is the spec that runs.
    return bundle.make_spec(
        definition,
        image=_image(args.image_config),
        host=hostfacts.read_host_facts(with_devices=config.privileged),
        network=network,
        paths=layout.bundle_paths(definition.id, meta_path),
    )


def run(args: argparse.Namespace) -> int:
    from ocirt.errors import InvalidArgument, OcirtError

    try:
        spec = _spec(args)
    except InvalidArgument as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_INVALID
    except OcirtError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"ocirt spec: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    json.dump(spec, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
