"""Container metrics: Kanto's Metrics feature and `ocirt stats`.

- `request`: the Metrics `request` value and its filter (pure);
- `formulas`: raw cgroup figures to Kanto's measurements and docker-stats rows (pure);
- `cgroups`: reads cgroupfs (v1 or v2) and /proc, no process forked (I/O);
- `collector`: keeps CPU baselines and turns a tick into a snapshot;
- `feature`: the Metrics feature, its reporting thread and its persisted request.
"""
