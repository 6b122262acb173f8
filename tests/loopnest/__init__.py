"""Accera-style loop nests: API, differential and review tests, GPU plans and emulation, the plan cache, Accera compatibility."""
