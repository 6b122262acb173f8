"""oi-opt passes from Python: --bind-sizes and pass diagnostics."""
