"""Images, by stage: `reference` and `manifest` (pure), `registry/` (pull), `content/`
(the store, streams, layouts), `rootfs/` (unpack, snapshots), `ocicrypt/` (encrypted
layers, loaded only when one is met); `service` composes them for the manager."""
