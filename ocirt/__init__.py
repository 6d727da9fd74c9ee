"""ocirt: a small container manager for Linux devices, speaking Eclipse Kanto's API."""

__version__ = "0.1.0"
