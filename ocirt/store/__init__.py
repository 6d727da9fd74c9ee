"""On-disk container metadata in Kanto's layout (`containers.py`) and the runtime members
of a record (`record.py`); writes go through `ocirt.atomic`. Does I/O (files only)."""
