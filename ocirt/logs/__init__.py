"""ocirt.logs."""
