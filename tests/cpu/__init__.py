"""device="cpu" (the compiled step) against device="reference": differential, constructs, branches, regressions."""
