"""Encrypted images end to end: skopeo encrypts, the real registry serves, a real Manager
with ImageRootfs pulls and decrypts, and a real runc container reads the image's marker.

A busybox layout with a random /marker is encrypted by hack/mkencrypted.sh for JWE, PKCS7
and PGP and pushed to docker-registry on 127.0.0.1. Kanto checks authorisation before
unpack and before each start: a wrong key, or none, is refused with DecryptError even when
the image is already on the device, and a key that no longer opens the image stops the
next start. Daemon-wide keys serve containers that give none.

Each test has its own home, exec and runc roots and cgroup parent; containers, monitors and
rootfs mounts are removed at teardown, even on failure.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocirt.config.model import (
    ContainerConfig,
    Decryption,
    NetworkMode,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.config.state import Status
from ocirt.daemon.adapters import ImageRootfs
from ocirt.errors import DecryptError
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.service import ImageService
from ocirt.logs.jsonline import LogStream
from ocirt.manager.manager import Manager
from ocirt.manager.types import ContainerView
from ocirt.things.protocol import DittoError
from tests.support.env import Env
from tests.support.waiting import wait_for

from .conftest import REPO, Registry, mkimage

pytestmark = pytest.mark.integration

PROTOCOLS = ("jwe", "pkcs7", "pgp")


@dataclass(frozen=True)
class Encrypted:
    """The pushed images (reference per protocol), their keys and the marker they hold."""

    refs: dict[str, str]
    keys: Path
    marker: str

    def key(self, name: str) -> str:
        return str(self.keys / name)


@pytest.fixture(scope="module")
def encrypted(
    busybox_rootfs: Path, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Encrypted:
    work = tmp_path_factory.mktemp("enc-e2e")
    layout = work / "plain"
    marker = secrets.token_hex(8)
    layers = mkimage.split_rootfs(busybox_rootfs, 2)
    layers.append(
        mkimage.Layer(
            mkimage.tar_bytes(lambda t: mkimage.add_file(t, "marker", marker.encode() + b"\n"))
        )
    )
    desc = mkimage.write_image(layout, layers, config={"Cmd": ["/bin/sh"]})
    mkimage.write_index(layout, "v1", [desc], nested=False)
    dest = work / "enc"
    subprocess.run(
        [str(REPO / "hack" / "mkencrypted.sh"), f"{layout}:v1", str(dest)],
        check=True,
        capture_output=True,
    )
    name = f"e2e{secrets.token_hex(4)}/busybox"
    refs = {}
    for protocol in PROTOCOLS:
        registry.push(dest / "oci", protocol, f"{name}:{protocol}")
        refs[protocol] = f"{registry.host}/{name}:{protocol}"
    return Encrypted(refs, dest / "keys", marker)


@dataclass
class ImageEnv(Env):
    """The shared manager environment with the image store as rootfs."""

    registry: Registry | None = None
    services: list[ImageService] = field(default_factory=list)

    def image_manager(self, keys: Sequence[str] = (), recipients: Sequence[str] = ()) -> Manager:
        assert self.registry is not None
        service = ImageService(self.home, RegistryAccess(insecure=frozenset({self.registry.host})))
        self.services.append(service)
        return self.manager(rootfs=ImageRootfs(service, keys, recipients))

    def rootfs_mounts(self) -> list[str]:
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(f"{self.home}/"):
                found.append(point)
        return found

    def assert_nothing_left(self, mgr: Manager) -> None:
        """No container, bundle, rootfs mount, image record, layer or snapshot remains."""
        assert mgr.list() == []
        containers = self.home / "containers"
        assert not containers.exists() or list(containers.iterdir()) == []
        assert self.rootfs_mounts() == []
        store = self.services[-1].store
        assert store.records() == []
        assert list(store.snapshots()) == []
        assert [d for d in store.blobs()] == []
        assert self.runc_ids() == []


@pytest.fixture
def env(runc_root: Path, cgroup_parent: str, registry: Registry) -> Iterator[ImageEnv]:
    # Under the private /run/ocirt-test-* dir (removed by runc_root after this teardown):
    # short paths for the monitor's unix sockets.
    the_env = ImageEnv(
        runc_root.parent / "home",
        runc_root.parent / "exec",
        runc_root,
        None,
        cgroup_parent,
        registry=registry,
    )
    try:
        yield the_env
    finally:
        the_env.clean_up(remove_containers=True)
        # Deepest first, so that a rootfs under another mount goes before it.
        for point in sorted(the_env.rootfs_mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(the_env.home, ignore_errors=True)


def config(keys: Sequence[str] = (), recipients: Sequence[str] = ()) -> ContainerConfig:
    return ContainerConfig(
        network_mode=NetworkMode.HOST,
        cmd=("cat", "/marker"),
        restart_policy=RestartPolicy(RestartPolicyType.NO),
        decryption=Decryption(tuple(keys), tuple(recipients)),
    )


def run_to_exit(mgr: Manager, cid: str) -> list[str]:
    """Start the container, wait for its exit and return its stdout lines from the log."""
    mgr.start(cid)
    wait_for("the exit", lambda: mgr.get(cid).state.status is Status.EXITED)
    view = mgr.get(cid)
    assert view.state.exit_code == 0, view.state
    return [e.text.removesuffix("\n") for e in mgr.logs(cid) if e.stream is LogStream.STDOUT]


def create_and_run(mgr: Manager, ref: str, cfg: ContainerConfig) -> tuple[ContainerView, list[str]]:
    view = mgr.create(ref, cfg)
    return view, run_to_exit(mgr, view.id)


RIGHT_KEYS = {
    "jwe-key-file": ("jwe", ["rsa.pem"], []),
    "jwe-password-protected": ("jwe", ["rsa_pw.pem:secret"], []),
    "pkcs7-cert-as-key": ("pkcs7", ["p7.key", "p7.crt"], []),
    "pkcs7-recipient": ("pkcs7", ["p7.key"], ["p7.crt"]),
    "pgp-secret-ring": ("pgp", ["gpg-sec.bin"], []),
}


@pytest.mark.parametrize("case", list(RIGHT_KEYS))
def test_an_encrypted_image_runs_with_its_key(
    env: ImageEnv, encrypted: Encrypted, case: str
) -> None:
    protocol, keys, certs = RIGHT_KEYS[case]
    mgr = env.image_manager()
    cfg = config([encrypted.key(k) for k in keys], [f"pkcs7:{encrypted.key(c)}" for c in certs])
    view, out = create_and_run(mgr, encrypted.refs[protocol], cfg)
    # The marker was only ever stored encrypted; the container read it decrypted.
    assert out == [encrypted.marker]
    mgr.remove(view.id, force=True)
    assert env.rootfs_mounts() == []


WRONG_KEYS = {
    "jwe-other-key": ("jwe", ["ec.pem"], []),
    "jwe-wrong-password": ("jwe", ["rsa_pw.pem:not-the-password"], []),
    "pkcs7-key-of-another-cert": ("pkcs7", ["rsa.pem"], ["p7.crt"]),
    "pgp-no-ring": ("pgp", ["rsa.pem"], []),
}


@pytest.mark.parametrize("case", list(WRONG_KEYS))
def test_a_wrong_key_is_refused_at_create_and_nothing_is_left(
    env: ImageEnv, encrypted: Encrypted, case: str
) -> None:
    protocol, keys, certs = WRONG_KEYS[case]
    mgr = env.image_manager()
    cfg = config([encrypted.key(k) for k in keys], [f"pkcs7:{encrypted.key(c)}" for c in certs])
    with pytest.raises(DecryptError) as info:
        mgr.create(encrypted.refs[protocol], cfg)
    assert DittoError.from_exception(info.value).to_value()["status"] == 500
    env.assert_nothing_left(mgr)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_image_on_the_device_still_needs_the_key(
    env: ImageEnv, encrypted: Encrypted, protocol: str
) -> None:
    mgr = env.image_manager()
    right = {
        "jwe": config([encrypted.key("rsa.pem")]),
        "pkcs7": config([encrypted.key("p7.key")], [f"pkcs7:{encrypted.key('p7.crt')}"]),
        "pgp": config([encrypted.key("gpg-sec.bin")]),
    }[protocol]
    first, out = create_and_run(mgr, encrypted.refs[protocol], right)
    assert out == [encrypted.marker]
    store = env.services[-1].store
    assert store.get_record(encrypted.refs[protocol]) is not None
    for refused in (config(), config([encrypted.key("ec.pem")])):
        with pytest.raises(DecryptError):
            mgr.create(encrypted.refs[protocol], refused)
    assert [v.id for v in mgr.list()] == [first.id]
    # The refusals changed nothing for the container that has the key.
    assert run_to_exit(mgr, first.id) == [encrypted.marker] * 2


def test_the_key_is_checked_again_before_each_start(env: ImageEnv, encrypted: Encrypted) -> None:
    key = env.home.parent / "container-key.pem"
    shutil.copyfile(encrypted.key("rsa.pem"), key)
    mgr = env.image_manager()
    view, out = create_and_run(mgr, encrypted.refs["jwe"], config([str(key)]))
    assert out == [encrypted.marker]
    # The key file is replaced by one that does not open the image: the next start fails
    # before anything runs, and the container is stopped with the reason.
    shutil.copyfile(encrypted.key("ec.pem"), key)
    with pytest.raises(DecryptError):
        mgr.start(view.id)
    state = mgr.get(view.id).state
    assert state.status is Status.STOPPED
    assert "not authorised" in state.error
    assert env.runc_ids() == []
    shutil.copyfile(encrypted.key("rsa.pem"), key)
    assert run_to_exit(mgr, view.id) == [encrypted.marker] * 2


def test_daemon_wide_keys_serve_containers_without_their_own(
    env: ImageEnv, encrypted: Encrypted
) -> None:
    mgr = env.image_manager(
        keys=[encrypted.key("rsa.pem"), encrypted.key("p7.key")],
        recipients=[f"pkcs7:{encrypted.key('p7.crt')}"],
    )
    for protocol in ("jwe", "pkcs7"):
        view, out = create_and_run(mgr, encrypted.refs[protocol], config())
        assert out == [encrypted.marker]
        assert run_to_exit(mgr, view.id) == [encrypted.marker] * 2
    # The daemon-wide keys do not open the PGP image.
    with pytest.raises(DecryptError):
        mgr.create(encrypted.refs["pgp"], config())
    # A container's own keys replace the daemon-wide ones (Kanto): a wrong one is refused
    # although the daemon's key would open the image, which is on the device by now.
    with pytest.raises(DecryptError):
        mgr.create(encrypted.refs["jwe"], config([encrypted.key("ec.pem")]))
    assert len(mgr.list()) == 2
