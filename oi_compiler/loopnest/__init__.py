"""Accera-style loop nests: the schedule model, the cache rules and the passes that apply them."""
