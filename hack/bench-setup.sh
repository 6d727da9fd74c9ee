#!/bin/sh
# Install what the benches need beyond hack/setup.sh, as root on Debian 12: containerd
# (Debian's 1.6 package), a baseline only. The benches start a private containerd of their
# own (bench/benchlib.py: own root, state, socket and config, stopped by PID), so the
# package's system service is not wanted: when this script installs the package on a
# systemd machine, it disables and stops that service again. CI does not need any of it.
set -eu
if dpkg-query -W -f='${Status}' containerd 2>/dev/null | grep -q "install ok installed"; then
    echo "bench-setup: containerd $(containerd --version | cut -d' ' -f3) already installed"
    exit 0
fi
echo "bench-setup: installing containerd"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends containerd >/dev/null
if [ -d /run/systemd/system ]; then
    systemctl disable --now containerd.service >/dev/null 2>&1 || true
fi
echo "bench-setup: containerd $(containerd --version | cut -d' ' -f3) installed (service not enabled)"
