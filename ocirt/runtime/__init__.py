"""ocirt.runtime."""
