"""`ocirt daemon`: run the container manager service (Kanto's config file format).

Every key of the config file is also a flag, named as Kanto's daemon names it
(containerm/daemon/daemon_command.go), so a unit file or script written for Kanto's
container-management starts ocirt unchanged. A flag wins over the file. Flags of settings
ocirt does not use (containerd's, gRPC's, the update agent's) are accepted and draw the same
warning as the key would. This module only parses: the daemon is imported when it runs.
"""

from __future__ import annotations

import sys

# Not typing.TYPE_CHECKING: the daemon runs for good, and what it imports stays mapped;
# argparse (with gettext) costs it about 0.3 MB, and the plain flags need none of it
# (`ocirt.cli.fastargs`; argparse prints --help and the usage errors).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

HELP = "Run the ocirt daemon (container manager, Ditto/MQTT front end, local API)."

# Kinds of flag values, as Kanto's flag library (pflag) reads them.
_TEXT, _INT, _BOOL, _LIST, _SECONDS = "text", "int", "bool", "list", "seconds"

# (flag, config key path, kind, help)
KANTO_FLAGS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("log-level", ("log", "log_level"), _TEXT, "log level: ERROR, WARN, INFO, DEBUG, TRACE"),
    ("log-file", ("log", "log_file"), _TEXT, "log file (default: stderr)"),
    ("log-file-size", ("log", "log_file_size"), _INT, "log file size in MB before rotation"),
    ("log-file-count", ("log", "log_file_count"), _INT, "rotated log files to keep"),
    ("log-file-max-age", ("log", "log_file_max_age"), _INT, "days to keep rotated log files"),
    ("log-syslog", ("log", "syslog"), _BOOL, "also log to the local syslog"),
    ("deployment-enable", ("deployment", "enable"), _BOOL, "apply container descriptors"),
    ("deployment-mode", ("deployment", "mode"), _TEXT, "deployment mode: init or update"),
    ("deployment-home-dir", ("deployment", "home_dir"), _TEXT, "where the init marker lives"),
    ("deployment-ctr-dir", ("deployment", "ctr_dir"), _TEXT, "directory of descriptors"),
    ("cm-home-dir", ("manager", "home_dir"), _TEXT, "home directory (containers, images)"),
    ("cm-exec-root-dir", ("manager", "exec_root_dir"), _TEXT, "exec root (runc, API socket)"),
    ("cm-cc-sid", ("manager", "container_client_sid"), _TEXT, "containerd only: not used"),
    ("cm-net-sid", ("manager", "network_manager_sid"), _TEXT, "containerd only: not used"),
    (
        "cm-deflt-ctrs-stop-timeout",
        ("manager", "default_ctrs_stop_timeout"),
        _SECONDS,
        "default stop timeout (Go duration like 30s, or seconds)",
    ),
    ("ccl-default-ns", ("containers", "default_ns"), _TEXT, "containerd only: not used"),
    ("ccl-ap", ("containers", "address_path"), _TEXT, "containerd only: not used"),
    (
        "ccl-insecure-registries",
        ("containers", "insecure_registries"),
        _LIST,
        "registries reached over plain HTTP or unverified TLS, host[:port] (comma-separated)",
    ),
    ("ccl-exec-root-dir", ("containers", "exec_root_dir"), _TEXT, "containerd's: not used"),
    ("ccl-home-dir", ("containers", "home_dir"), _TEXT, "containerd's: not used"),
    (
        "ccl-image-dec-keys",
        ("containers", "image_dec_keys"),
        _LIST,
        "image decryption keys, file[:password] (comma-separated)",
    ),
    (
        "ccl-image-dec-recipients",
        ("containers", "image_dec_recipients"),
        _LIST,
        "image decryption recipients, pkcs7:cert-file (comma-separated)",
    ),
    ("ccl-runc-runtime", ("containers", "runc_runtime"), _TEXT, "containerd only: not used"),
    ("ccl-image-expiry", ("containers", "image_expiry"), _TEXT, "unused image expiry (744h)"),
    (
        "ccl-image-expiry-disable",
        ("containers", "image_expiry_disable"),
        _BOOL,
        "never expire unused images",
    ),
    ("ccl-lease-id", ("containers", "lease_id"), _TEXT, "containerd only: not used"),
    (
        "ccl-image-verifier-type",
        ("containers", "image_verifier_type"),
        _TEXT,
        "image signature verifier: none",
    ),
    (
        "ccl-image-verifier-config",
        ("containers", "image_verifier_config"),
        _TEXT,
        "verifier settings, key=value,...",
    ),
    ("net-type", ("network", "type"), _TEXT, "network type: bridge"),
    ("net-home-dir", ("network", "home_dir"), _TEXT, "libnetwork's: not used"),
    ("net-exec-root-dir", ("network", "exec_root_dir"), _TEXT, "libnetwork's: not used"),
    (
        "net-tbr-disable",
        ("network", "default_bridge", "disable"),
        _BOOL,
        "no default bridge: host network mode only",
    ),
    ("net-br-name", ("network", "default_bridge", "name"), _TEXT, "bridge name (kanto-cm0)"),
    ("net-br-ip4", ("network", "default_bridge", "ip4"), _TEXT, "bridge address, a.b.c.d/n"),
    ("net-br-fcidr4", ("network", "default_bridge", "fcidr4"), _TEXT, "container range, CIDR"),
    ("net-br-gwip4", ("network", "default_bridge", "gwip4"), _TEXT, "containers' gateway"),
    ("net-br-enable-ip6", ("network", "default_bridge", "enable_ip6"), _BOOL, "IPv6"),
    ("net-br-mtu", ("network", "default_bridge", "mtu"), _INT, "bridge MTU (1500)"),
    ("net-br-icc", ("network", "default_bridge", "icc"), _BOOL, "inter-container traffic"),
    ("net-br-ipt", ("network", "default_bridge", "ip_tables"), _BOOL, "manage firewall rules"),
    ("net-br-ipfw", ("network", "default_bridge", "ip_forward"), _BOOL, "enable IP forwarding"),
    ("net-br-ipmasq", ("network", "default_bridge", "ip_masq"), _BOOL, "masquerade outgoing"),
    ("net-br-ulp", ("network", "default_bridge", "userland_proxy"), _BOOL, "userland proxy"),
    ("grpc-serv-netp", ("grpc_server", "protocol"), _TEXT, "gRPC only: not used"),
    ("grpc-serv-ap", ("grpc_server", "address_path"), _TEXT, "gRPC only: not used"),
    ("things-enable", ("things", "enable"), _BOOL, "the Ditto/MQTT front end"),
    ("things-home-dir", ("things", "home_dir"), _TEXT, "the front end's state directory"),
    ("things-features", ("things", "features"), _LIST, "features to register (comma-separated)"),
    ("ua-enable", ("update_agent", "enable"), _BOOL, "the containers update agent"),
    ("ua-domain", ("update_agent", "domain"), _TEXT, "update agent domain (containers)"),
    (
        "ua-system-containers",
        ("update_agent", "system_containers"),
        _LIST,
        "containers the update agent never touches (comma-separated)",
    ),
    (
        "ua-verbose-inventory-report",
        ("update_agent", "verbose_inventory_report"),
        _BOOL,
        "report every container parameter, defaults included",
    ),
    ("conn-broker-url", ("connection", "broker_url"), _TEXT, "MQTT broker URL"),
    ("conn-keep-alive", ("connection", "keep_alive"), _TEXT, "MQTT keep-alive (20s)"),
    (
        "conn-disconnect-timeout",
        ("connection", "disconnect_timeout"),
        _TEXT,
        "MQTT disconnect timeout (250ms)",
    ),
    ("conn-client-username", ("connection", "client_username"), _TEXT, "MQTT user name"),
    ("conn-client-password", ("connection", "client_password"), _TEXT, "MQTT password"),
    ("conn-connect-timeout", ("connection", "connect_timeout"), _TEXT, "MQTT connect timeout"),
    ("conn-ack-timeout", ("connection", "acknowledge_timeout"), _TEXT, "MQTT ack timeout"),
    ("conn-sub-timeout", ("connection", "subscribe_timeout"), _TEXT, "MQTT subscribe timeout"),
    (
        "conn-unsub-timeout",
        ("connection", "unsubscribe_timeout"),
        _TEXT,
        "MQTT unsubscribe timeout",
    ),
    ("conn-root-ca", ("connection", "transport", "root_ca"), _TEXT, "broker CA file (PEM)"),
    ("conn-client-cert", ("connection", "transport", "client_cert"), _TEXT, "client cert (PEM)"),
    ("conn-client-key", ("connection", "transport", "client_key"), _TEXT, "client key (PEM)"),
)


def boolean(text: str) -> bool:
    # Go's strconv.ParseBool, which Kanto's flags use. A ValueError is argparse's usage
    # error "invalid boolean value: ..." (it names the function).
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"invalid boolean {text!r}: want true or false")


def _dest(flag: str) -> str:
    return "kanto_" + flag.replace("-", "_")


def add_arguments(parser: argparse.ArgumentParser) -> None:  # or a FastParser
    parser.add_argument(
        "--config",
        "--cfg-file",
        dest="config",
        default=None,
        help="Kanto config.json (default: /etc/container-management/config.json if present)",
    )
    parser.add_argument(
        "--stop-containers-on-exit",
        action="store_true",
        help="stop every container when the daemon stops (Kanto's behaviour)",
    )
    parser.add_argument(
        "--cgroup-parent",
        default="ocirt",
        help="cgroup of the containers, relative to the daemon's own (default: ocirt)",
    )
    kanto = parser.add_argument_group(
        "Kanto's daemon flags",
        "each sets the config key of the same meaning and wins over the file",
    )
    for flag, path, kind, help_text in KANTO_FLAGS:
        key = ".".join(path)
        options: dict[str, object] = {"dest": _dest(flag), "default": None}
        if kind == _BOOL:
            options.update(nargs="?", const=True, type=boolean, metavar="BOOL")
        elif kind == _INT:
            options.update(type=int, metavar="N")
        elif kind == _LIST:
            options.update(action="append", metavar="A,B")
        else:
            options.update(metavar="VALUE")
        kanto.add_argument(f"--{flag}", help=f"{help_text} [{key}]", **options)  # type: ignore[arg-type]


def overrides(args: argparse.Namespace) -> dict[tuple[str, ...], object]:
    """The config keys the given flags set."""
    out: dict[tuple[str, ...], object] = {}
    for flag, path, kind, _ in KANTO_FLAGS:
        value = getattr(args, _dest(flag), None)
        if value is None:
            continue
        if kind == _LIST:
            # pflag's string slices: comma-separated, and each repetition adds to the list.
            value = [item for text in value for item in text.split(",") if item]
        elif kind == _SECONDS and isinstance(value, str) and value.isdigit():
            value = int(value)  # Kanto reads a bare number as seconds
        out[path] = value
    return out


def run(args: argparse.Namespace) -> int:
    from ocirt.daemon.main import run_daemon
    from ocirt.errors import OcirtError

    try:
        return run_daemon(
            args.config, args.stop_containers_on_exit, args.cgroup_parent, overrides(args)
        )
    except OcirtError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
