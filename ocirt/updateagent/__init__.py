"""Kanto's containers update agent (docs/kanto-features-notes.md §2.3) and what ocirt adds to it.

Pure parts: `topics`, `desired` (desired state -> container configs), `identify`
(actions and their messages), `inventory` (current state), `operation` (the per-activity
command-order state machine). Effects: `executor` (the manager's public API), `agent`
(message handling, autonomous mode), `mqtt` (the agent's own MQTT client), `journal`.
"""
