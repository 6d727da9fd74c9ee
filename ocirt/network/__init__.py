"""ocirt.network."""
