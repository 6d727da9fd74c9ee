"""Talking to registries: `auth` decides what credentials to send (pure), `client` sends
requests over HTTP(S) (distribution-spec v2) and streams blobs."""
