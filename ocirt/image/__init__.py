"""ocirt.image."""
