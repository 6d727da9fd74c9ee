"""Image content on the device: `store` (content-addressed blobs, records, gc), `pipeline`
(digest, decompress, decrypt streams), `layout` (OCI image layouts in and out)."""
