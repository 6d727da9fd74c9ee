"""ocicrypt: encrypted image layers (github.com/containers/ocicrypt), both directions.

`layer` opens a layer (its wrapped keys, then a streaming AES-CTR + HMAC cipher); `keys`
loads decryption keys; `jwe`, `pkcs7`, `pgp` unwrap (and `jwe`, `pkcs7` wrap) the layer
key; `jwk` holds the key types and JWK parsing both `jwe` and `keys` use; `encrypt` seals a
layer for recipients and `encrypt_layout` rewrites an OCI layout with encrypted layers.

Every module here imports cryptography (OpenSSL) at its top. Devices are small, so nothing
outside imports this package until it meets an encrypted layer: `ocirt.image.service`
loads it at one seam (`service.ocicrypt`), and the CLI's `image encrypt` command imports it.
"""
