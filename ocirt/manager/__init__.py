"""ocirt.manager."""
