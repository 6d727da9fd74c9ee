"""The container config model: parse, default, validate, serialise. Pure: no I/O."""
