#!/bin/sh
# Install everything ocirt and its tests need on Debian 12, as root: the real parts from
# Debian's packages, and a virtualenv (.venv) with ocirt installed editable.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="runc busybox-static mosquitto docker-registry skopeo umoci iptables nftables \
iproute2 gnupg gcc libc6-dev python3 python3-venv python3-dev libffi-dev ca-certificates"

missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Debian's own interpreter, the one a device runs ocirt with (a python3 earlier on PATH,
# e.g. pyenv's, may differ in start-up memory); PYTHON=... overrides.
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -m pip install -q -e '.[test]' >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    exit 1
fi
.venv/bin/python -c 'import ocirt._native' || { echo "setup: ocirt did not build" >&2; exit 1; }
