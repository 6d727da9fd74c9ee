"""ocirt.things."""
