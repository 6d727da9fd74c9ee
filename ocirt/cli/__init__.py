"""ocirt.cli."""
