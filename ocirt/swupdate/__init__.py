"""The SoftwareUpdatable feature: containers installed and removed as hawkBit software modules.

- `model`: the wire values (install/remove requests, operation status, installed
  dependencies, checksums) with Kanto's texts. Pure.
- `plan`: the per-module status chain and the remove outcome, as pure plans. Pure.
- `fetch`: the artifact download port and its HTTP(S) adapter (bounded, resumable).
- `journal`: accepted operations persisted, so that a restart finishes them.
- `runner`: the one worker that carries operations out through the manager's API.
- `feature`: the things glue: commands in, twin messages out.

Kanto's behaviour: docs/kanto-features-notes.md §2.2; the differences: docs/compatibility.md.
"""
