"""ocirt.spec."""
