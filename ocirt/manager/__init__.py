"""The container manager: use cases (`manager.py`), recovery, events, exit notices and
the ports to images and networks (`ports.py`). Does I/O through its adapters."""
