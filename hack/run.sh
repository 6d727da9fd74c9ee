#!/bin/sh
# ocirt's main job: set up, then run the daemon on a local MQTT broker and create one
# container with the seed createWithConfig message (see hack/demo.py). Run as root.
# Ctrl-C removes the demo container and stops the daemon; --once does so at once.
set -eu
cd "$(dirname "$0")/.."
hack/setup.sh
exec .venv/bin/python hack/demo.py "$@"
