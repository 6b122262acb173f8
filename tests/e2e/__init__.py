"""End to end: the tiny decoder, the README, the oi-run/oi-opt CLIs, friction, packaging, layering, the public API."""
