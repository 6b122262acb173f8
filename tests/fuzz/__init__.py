"""The in-repo fuzzing campaign (docs/fuzzing.md): hypothesis targets for every input oi_compiler reads."""
