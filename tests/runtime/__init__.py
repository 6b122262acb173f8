"""The runtime: reference executor, cache semantics, checkpoints and state files, models, concurrency, and their hardening."""
