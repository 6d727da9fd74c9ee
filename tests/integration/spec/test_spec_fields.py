"""Each container config field, built by ocirt.spec, run by real runc, seen from inside.

Containers join a network namespace made for this module, get their cgroup under the
test's own (relative cgroupsPath), and are removed by the `runc_root` fixture.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.model import ContainerConfig, Device, MountPoint, Propagation, Resources
from ocirt.runtime import hostfacts
from ocirt.runtime.runc import Runc, RuncStatus
from ocirt.spec.builder import build_spec
from ocirt.spec.capabilities import CAPABILITIES, DEFAULT_CAPABILITIES
from ocirt.spec.facts import BundlePaths, HostFacts, ImageConfig, NetworkAttachment, UserIds
from tests.support.runc import RuncForTests

pytestmark = pytest.mark.integration

BASE = ContainerConfig(host_name="spec-host", domain_name="spec-domain")
IMAGE = ImageConfig(cmd=("/bin/true",), env=("PATH=/bin:/sbin:/usr/bin",))


@pytest.fixture(scope="module")
def netns() -> Iterator[NetworkAttachment]:
    name = f"ocirt-t-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield NetworkAttachment.netns(f"/var/run/netns/{name}")
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture(scope="module")
def host() -> HostFacts:
    return hostfacts.read_host_facts()


def cid() -> str:
    return f"spec-{uuid.uuid4().hex[:12]}"


def write_bundle(tmp_path: Path, spec: dict[str, Any]) -> Path:
    bundle = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def make_spec(
    rootfs: Path,
    host: HostFacts,
    network: NetworkAttachment,
    config: ContainerConfig,
    image: ImageConfig = IMAGE,
    *,
    user: UserIds | None = None,
    devices: tuple[str, ...] = (),
    name: str = "",
    network_files: Path | None = None,
) -> dict[str, Any]:
    files = {}
    if network_files is not None:
        for fname in ("hosts", "resolv.conf", "hostname"):
            files[fname] = str(network_files / fname)
    paths = BundlePaths(
        rootfs=str(rootfs),
        hosts=files.get("hosts"),
        resolv_conf=files.get("resolv.conf"),
        hostname=files.get("hostname"),
        # One level, so that runc removes it with the container.
        cgroups_path=f"ocirt-test-{name or uuid.uuid4().hex[:12]}",
    )
    return build_spec(
        config,
        image=image,
        user=user or UserIds(),
        host=host,
        network=network,
        paths=paths,
        devices={path: hostfacts.stat_device(path) for path in devices},
    )


def run(runc_root: Path, tmp_path: Path, spec: dict[str, Any]) -> tuple[int, str, str]:
    """`runc run` in the foreground: the container's exit code, stdout and stderr."""
    bundle = write_bundle(tmp_path, spec)
    out, err = bundle / "out", bundle / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.run(
            ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), cid()],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            timeout=60,
            check=False,
        )
    return proc.returncode, out.read_text(), err.read_text()


def sh(config: ContainerConfig, script: str) -> ContainerConfig:
    return replace(config, cmd=("/bin/sh", "-c", script))


def wait_running(runc: Runc, name: str) -> int:
    for _ in range(400):
        state = runc.state(name)
        if state.status is RuncStatus.RUNNING:
            return state.pid
        time.sleep(0.025)
    raise AssertionError(f"{name} never ran: {runc.state(name)}")


def start_sleeper(
    runc_root: Path, tmp_path: Path, spec: dict[str, Any]
) -> tuple[RuncForTests, str, int]:
    spec["process"]["args"] = ["/bin/sleep", "600"]
    bundle = write_bundle(tmp_path, spec)
    runc = RuncForTests(runc_root)
    name = cid()
    runc.create(name, bundle)
    runc.start(name)
    return runc, name, wait_running(runc, name)


# -- hostname, domainname, /etc files ---------------------------------------------------


def test_hostname_and_domainname(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "hostname").write_text("spec-host\n")
    (files / "hosts").write_text("127.0.0.1\tlocalhost\n10.99.0.2\tspec-host\n")
    (files / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    script = "hostname; cat /proc/sys/kernel/domainname /etc/hostname /etc/hosts /etc/resolv.conf"
    spec = make_spec(rootfs_copy, host, netns, sh(BASE, script), network_files=files)
    rc, out, err = run(runc_root, tmp_path, spec)
    assert rc == 0, err
    assert out.splitlines() == [
        "spec-host",
        "spec-domain",
        "spec-host",
        "127.0.0.1\tlocalhost",
        "10.99.0.2\tspec-host",
        "nameserver 127.0.0.1",
    ]


def test_host_mode_shows_the_host_name_without_renaming_the_host(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path, host: HostFacts
) -> None:
    from ocirt.config.model import NetworkMode

    config = sh(
        replace(BASE, network_mode=NetworkMode.HOST),
        "hostname; hostname renamed-inside; readlink /proc/self/ns/net",
    )
    spec = make_spec(rootfs_copy, host, NetworkAttachment.host(), config)
    rc, out, err = run(runc_root, tmp_path, spec)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == socket.gethostname()
    assert lines[1] == os.readlink("/proc/self/ns/net")
    assert socket.gethostname() == host.hostname


# -- process: args, env, user, rlimits ----------------------------------------------------


def test_entrypoint_with_config_cmd(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path, host: HostFacts, netns: NetworkAttachment
) -> None:
    image = ImageConfig(entrypoint=("/bin/echo", "ep"), cmd=("x",))
    spec = make_spec(rootfs_copy, host, netns, replace(BASE, cmd=("y",)), image)
    rc, out, err = run(runc_root, tmp_path, spec)
    assert (rc, out) == (0, "ep y\n"), err
    spec = make_spec(rootfs_copy, host, netns, BASE, image)
    assert run(runc_root, tmp_path, spec)[:2] == (0, "ep x\n")


def test_env_cwd_and_rlimit(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path, host: HostFacts, netns: NetworkAttachment
) -> None:
    image = ImageConfig(env=("PATH=/bin", "FOO=image", "KEEP=1"), working_dir="/tmp")
    config = sh(replace(BASE, env=("FOO=config", "NEW=a b")), "env; pwd; ulimit -n")
    rc, out, err = run(runc_root, tmp_path, make_spec(rootfs_copy, host, netns, config, image))
    assert rc == 0, err
    lines = out.splitlines()
    env = dict(line.split("=", 1) for line in lines[:-2])
    assert env["FOO"] == "config"
    assert env["KEEP"] == "1"
    assert env["NEW"] == "a b"
    assert env["HOSTNAME"] == "spec-host"
    assert env["PATH"] == "/bin"
    assert "TERM" not in env
    assert lines[-2] == "/tmp"
    assert int(lines[-1]) == min(1024, host.hard_rlimits["RLIMIT_NOFILE"])


def test_image_user_and_groups(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path, host: HostFacts, netns: NetworkAttachment
) -> None:
    user = hostfacts.image_user(str(rootfs_copy), "user")
    config = sh(BASE, "id -u; id -g; id -G")
    spec = make_spec(rootfs_copy, host, netns, config, user=user)
    rc, out, err = run(runc_root, tmp_path, spec)
    assert rc == 0, err
    uid, gid, groups = out.splitlines()
    assert (uid, gid) == ("1000", "1000")
    assert set(groups.split()) == {"1000", "29", "44"}


# -- mounts and propagation -----------------------------------------------------------


@pytest.fixture
def shared_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs made shared, so that rshared and rslave binds of it have a peer group."""
    source = tmp_path / "shared-src"
    source.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "ocirt-test", str(source)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(source)], check=True)
        (source / "marker").write_text("from-host\n")
        yield source
    finally:
        subprocess.run(["umount", "-R", "-l", str(source)], check=False)


def _mount_fields(mountinfo: str, target: str) -> str:
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == target:
            return line
    raise AssertionError(f"{target} not in mountinfo:\n{mountinfo}")


def test_bind_propagation_modes(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
    shared_tmpfs: Path,
) -> None:
    mounts = tuple(
        MountPoint(str(shared_tmpfs), f"/mnt/{p.value}", p)
        for p in (Propagation.RSHARED, Propagation.RSLAVE, Propagation.RPRIVATE)
    )
    config = sh(replace(BASE, mount_points=mounts), "cat /mnt/rprivate/marker /proc/self/mountinfo")
    rc, out, err = run(runc_root, tmp_path, make_spec(rootfs_copy, host, netns, config))
    assert rc == 0, err
    assert out.startswith("from-host\n")
    shared = _mount_fields(out, "/mnt/rshared")
    slave = _mount_fields(out, "/mnt/rslave")
    private = _mount_fields(out, "/mnt/rprivate")
    assert "shared:" in shared
    assert "master:" in slave and "shared:" not in slave.split(" - ")[0]
    assert "shared:" not in private and "master:" not in private


def test_rslave_mount_sees_a_later_host_mount(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
    shared_tmpfs: Path,
) -> None:
    mounts = (MountPoint(str(shared_tmpfs), "/mnt/in", Propagation.RSLAVE),)
    spec = make_spec(rootfs_copy, host, netns, replace(BASE, mount_points=mounts))
    assert spec["linux"]["rootfsPropagation"] == "slave"
    runc, name, _ = start_sleeper(runc_root, tmp_path, spec)
    sub = shared_tmpfs / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "ocirt-sub", str(sub)], check=True)
    (sub / "late").write_text("late-mount\n")
    result = runc.exec(name, ["cat", "/mnt/in/sub/late"])
    assert (result.returncode, result.stdout) == (0, "late-mount\n"), result.stderr


# -- devices ----------------------------------------------------------------------------

# /dev/fuse (10:229) is one that neither Docker's list nor runc's built-in rules allow,
# so the mapping's own rule is all that grants it. (runc always allows /dev/null, zero,
# full, random, urandom, tty, pts and ptmx rwm, so a narrower rule for those has no
# effect: the cgroup works per major:minor, not per path.)
DEVICE_SCRIPT = (
    "ls -l /dev/myfuse; "
    "(exec 3</dev/myfuse) && echo read-ok; "
    "(exec 4>/dev/myfuse) && echo write-ok; "
    "true"
)


@pytest.mark.parametrize(
    ("perms", "expect_write"),
    [("r", False), ("rw", True)],
)
def test_device_node_and_cgroup_permissions(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
    perms: str,
    expect_write: bool,
) -> None:
    config = sh(replace(BASE, devices=(Device("/dev/fuse", "/dev/myfuse", perms),)), DEVICE_SCRIPT)
    spec = make_spec(rootfs_copy, host, netns, config, devices=("/dev/fuse",))
    rc, out, err = run(runc_root, tmp_path, spec)
    assert rc == 0, err
    listing = out.splitlines()[0].split()
    assert listing[0] == "crw-------"
    assert listing[4:6] == ["10,", "229"]
    assert "read-ok" in out
    assert ("write-ok" in out) is expect_write
    if not expect_write:
        assert "Operation not permitted" in err


def test_unmapped_device_is_refused(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path, host: HostFacts, netns: NetworkAttachment
) -> None:
    # Even with the node created by hand, the default device cgroup denies 10:229.
    config = sh(BASE, "mknod /dev/f c 10 229 && (exec 3</dev/f) && echo opened; true")
    rc, out, err = run(runc_root, tmp_path, make_spec(rootfs_copy, host, netns, config))
    assert rc == 0, err
    assert "opened" not in out
    assert "Operation not permitted" in err


# -- capabilities -----------------------------------------------------------------------


def _caps(out: str) -> dict[str, int]:
    found = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
            found[key] = int(value, 16)
    return found


def _mask(names: tuple[str, ...] | list[str]) -> int:
    return sum(1 << CAPABILITIES.index(name) for name in names)


@pytest.mark.parametrize(
    ("extra", "privileged"),
    [((), False), (("net_admin", "CAP_SYS_TIME"), False), ((), True)],
    ids=["default", "extra", "privileged"],
)
def test_capability_sets(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
    extra: tuple[str, ...],
    privileged: bool,
) -> None:
    config = sh(
        replace(BASE, extra_capabilities=extra, privileged=privileged),
        "grep ^Cap /proc/self/status; grep -E ' /sys | - cgroup2? ' /proc/self/mountinfo;"
        " ls /dev | wc -l",
    )
    if privileged:
        host = hostfacts.read_host_facts(with_devices=True)
    rc, out, err = run(runc_root, tmp_path, make_spec(rootfs_copy, host, netns, config))
    assert rc == 0, err
    sets = _caps(out)
    if privileged:
        expected = _mask(host.capabilities)
    else:
        wanted = [*DEFAULT_CAPABILITIES, *(f"CAP_{e.upper().removeprefix('CAP_')}" for e in extra)]
        expected = _mask(wanted)
    assert sets["CapBnd"] == sets["CapEff"] == sets["CapPrm"] == expected
    assert sets["CapInh"] == sets["CapAmb"] == 0
    # /sys itself and each cgroup hierarchy below /sys/fs/cgroup (runc's tmpfs holding
    # them stays rw in runc 1.1 either way).
    sys_lines = [line for line in out.splitlines() if " /sys" in line]
    assert len(sys_lines) >= 2
    mount_opts = {line.split()[5].split(",")[0] for line in sys_lines}
    assert mount_opts == ({"rw"} if privileged else {"ro"})
    device_count = int(out.splitlines()[-1])
    host_count = len(hostfacts.host_devices())
    if privileged:
        assert device_count >= host_count
    else:
        assert device_count < host_count


# -- memory -----------------------------------------------------------------------------


def _cgroup_dir(pid: int, controller: str) -> Path:
    """The cgroup directory of `pid` for a v1 controller, or the v2 one; never guessed."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    cgroup_path = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (v2 and controllers == "") or controller in controllers.split(","):
            cgroup_path = path
    assert cgroup_path is not None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, fstype, super_opts = pre.split(), post.split()[0], post.split()[-1]
        wanted = "cgroup2" if v2 else "cgroup"
        if fstype == wanted and (v2 or controller in super_opts.split(",")):
            root, mount_point = fields[3], fields[4]
            relative = os.path.relpath(cgroup_path, root)
            return Path(mount_point) / relative
    raise AssertionError(f"no {controller} cgroup mount")


@pytest.mark.parametrize(
    ("resources", "limit", "swap", "reservation"),
    [
        (Resources(memory="64M"), 64 << 20, 128 << 20, None),
        (
            Resources(memory="32M", memory_swap="48M", memory_reservation="16M"),
            32 << 20,
            48 << 20,
            16 << 20,
        ),
        (Resources(memory="3m", memory_swap="-1"), 3 << 20, -1, None),
    ],
    ids=["swap-default", "explicit", "swap-unlimited"],
)
def test_memory_limits_in_the_cgroup(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
    resources: Resources,
    limit: int,
    swap: int,
    reservation: int | None,
) -> None:
    spec = make_spec(rootfs_copy, host, netns, replace(BASE, resources=resources))
    _, _, pid = start_sleeper(runc_root, tmp_path, spec)
    cgroup = _cgroup_dir(pid, "memory")
    assert str(pid) in (cgroup / "cgroup.procs").read_text().split()
    if (cgroup / "memory.max").exists():
        assert int((cgroup / "memory.max").read_text()) == limit
        swap_max = (cgroup / "memory.swap.max").read_text().strip()
        assert swap_max == ("max" if swap == -1 else str(swap - limit))
        if reservation is not None:
            assert int((cgroup / "memory.low").read_text()) == reservation
        return
    assert int((cgroup / "memory.limit_in_bytes").read_text()) == limit
    memsw = int((cgroup / "memory.memsw.limit_in_bytes").read_text())
    if swap == -1:
        assert memsw >= 2**62  # the kernel's "unlimited", page-rounded LONG_MAX
    else:
        assert memsw == swap
    if reservation is not None:
        assert int((cgroup / "memory.soft_limit_in_bytes").read_text()) == reservation


# -- tty ----------------------------------------------------------------------------------


@pytest.fixture
def console_socket() -> Iterator[tuple[socket.socket, Path]]:
    # A short directory: sun_path holds 108 bytes, pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="ocs-", dir="/tmp"))
    path = directory / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(1)
        yield server, path
    finally:
        server.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


def _read_until_closed(fd: int) -> bytes:
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the last slave fd closes
            break
        if not chunk:
            break
        data += chunk
        if b"got:" in data and data.rstrip().endswith(b"done"):
            break
    return data


def test_tty_and_stdin_through_the_console_socket(
    runc_root: Path,
    rootfs_copy: Path,
    tmp_path: Path,
    host: HostFacts,
    netns: NetworkAttachment,
    console_socket: tuple[socket.socket, Path],
) -> None:
    server, path = console_socket
    script = (
        "tty; [ -t 0 ] && echo stdin-tty; echo term=$TERM; read line; echo got:$line; echo done"
    )
    config = sh(replace(BASE, tty=True, open_stdin=True), script)
    bundle = write_bundle(tmp_path, make_spec(rootfs_copy, host, netns, config))
    runc = RuncForTests(runc_root)
    name = cid()
    # runc connects during create; the connection waits in the backlog until accepted.
    runc.create(name, bundle, console_socket=path)
    conn, _ = server.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1
    master = fds[0]
    try:
        runc.start(name)
        os.write(master, b"hello\n")
        output = _read_until_closed(master).decode(errors="replace")
    finally:
        os.close(master)
    lines = [line.strip() for line in output.splitlines()]
    assert "/dev/pts/0" in lines
    assert "stdin-tty" in lines
    assert "term=xterm" in lines
    assert "got:hello" in lines
