#!/bin/sh
# Build a busybox rootfs from Debian's busybox-static, with no network.
# Usage: hack/mkrootfs.sh DEST   (DEST must not exist or be empty)
set -eu
dest=${1:?usage: mkrootfs.sh DEST}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "mkrootfs: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home/user var/log run
chmod 1777 tmp
cp "$busybox" bin/busybox
chmod 755 bin/busybox
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] && continue
    [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
cat > etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > etc/group <<'GR'
root:x:0:
daemon:x:1:
tty:x:5:
audio:x:29:user
video:x:44:user
user:x:1000:
nogroup:x:65534:
GR
chown 1000:1000 home/user
: > etc/hosts
: > etc/resolv.conf
echo busybox > etc/hostname
