"""On-disk container metadata in Kanto's layout (`containers.py`) and crash-safe writes
(`atomic.py`). Does I/O (files only)."""
