#!/bin/sh
# Encrypt an OCI image layout with skopeo for every ocicrypt protocol, and make the keys.
# Usage: hack/mkencrypted.sh SRC_LAYOUT:TAG DEST
#   (make SRC with hack/mkimage.py LAYOUT TAG ROOTFS, or any `oci:` layout)
# Writes DEST/keys/ (rsa.pem rsa_pub.pem rsa_pw.pem [password: secret] ec.pem ec_pub.pem
# p7.key p7.crt gpg-sec.bin [GPG key t@example.com, no passphrase]) and the layout DEST/oci
# with tags jwe, pkcs7, pgp and multi (all four recipients). Decrypt with, e.g.,
#   ocirt image pull --dec-key DEST/keys/rsa.pem ...  or  skopeo copy --decryption-key ...
# Needs skopeo, openssl and gpg (Debian: skopeo openssl gnupg). No network.
set -eu
src=${1:?usage: mkencrypted.sh SRC_LAYOUT:TAG DEST}
dest=${2:?usage: mkencrypted.sh SRC_LAYOUT:TAG DEST}
case $src in *:*) ;; *) echo "mkencrypted: SRC must be LAYOUT:TAG" >&2; exit 2 ;; esac

keys=$dest/keys
mkdir -p "$keys"
home=$(mktemp -d /tmp/ocirt-mkenc-XXXXXX)
policy=$home/policy.json
cleanup() {
    GNUPGHOME=$home gpgconf --kill gpg-agent 2>/dev/null || true
    GNUPGHOME=$home gpgconf --remove-socketdir 2>/dev/null || true
    rm -rf "$home"
}
trap cleanup EXIT INT TERM
chmod 700 "$home"
echo '{"default": [{"type": "insecureAcceptAnything"}]}' > "$policy"

openssl genrsa -out "$keys/rsa.pem" 2048 2>/dev/null
openssl rsa -in "$keys/rsa.pem" -pubout -out "$keys/rsa_pub.pem" 2>/dev/null
# Legacy-encrypted PEM: the only protected form ocicrypt (and so Kanto) reads.
openssl rsa -in "$keys/rsa.pem" -aes256 -traditional -passout pass:secret \
    -out "$keys/rsa_pw.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout \
    | openssl pkcs8 -topk8 -nocrypt -out "$keys/ec.pem"
openssl ec -in "$keys/ec.pem" -pubout -out "$keys/ec_pub.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$keys/p7.key" -out "$keys/p7.crt" \
    -subj /CN=ocirt-p7 -days 30 2>/dev/null

# skopeo needs an encryption subkey; Debian's skopeo (x/crypto/openpgp) cannot use ECDH.
export GNUPGHOME="$home"
gpg --batch -q --passphrase '' --quick-gen-key 'T <t@example.com>' rsa2048 sign never
fpr=$(gpg --batch --with-colons --list-keys t@example.com | awk -F: '/^fpr:/ {print $10; exit}')
gpg --batch -q --passphrase '' --quick-add-key "$fpr" rsa2048 encr never
gpg --batch -q --export-secret-keys t@example.com > "$keys/gpg-sec.bin"

copy() {
    tag=$1
    shift
    skopeo --policy "$policy" copy -q "$@" "oci:$src" "oci:$dest/oci:$tag"
}
copy jwe --encryption-key "jwe:$keys/rsa_pub.pem"
copy pkcs7 --encryption-key "pkcs7:$keys/p7.crt"
copy pgp --encryption-key pgp:t@example.com
copy multi --encryption-key "jwe:$keys/rsa_pub.pem" --encryption-key "jwe:$keys/ec_pub.pem" \
    --encryption-key "pkcs7:$keys/p7.crt" --encryption-key pgp:t@example.com
echo "mkencrypted: $dest/oci tags jwe pkcs7 pgp multi; keys in $keys"
