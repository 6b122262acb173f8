"""Running graphs step by step: models, the reference executor, cache tables, traces."""
