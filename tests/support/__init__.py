"""What the test suites share: waiting, ports, the manager environment and the fakes
(`FakeRuntime`, `FakeNetwork`, `FakeManager`). Importable from every test as
`tests.support` (pytest's `pythonpath` holds the repository root)."""
