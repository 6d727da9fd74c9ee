"""Root filesystems from layers: `unpack` applies a layer tar safely, `snapshot` commits
unpacked layers by ChainID and mounts (or flattens) a container's rootfs from them."""
