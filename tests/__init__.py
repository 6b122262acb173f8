"""The pytest suite, by component (see each subpackage); shared helpers live here: `from tests.example_models import ...`."""
