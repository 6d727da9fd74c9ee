"""ocirt's tests; `tests.support` holds what the suites share."""
