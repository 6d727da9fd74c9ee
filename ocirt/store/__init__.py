"""ocirt.store."""
