"""ocirt.daemon."""
