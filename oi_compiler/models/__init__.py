"""Model files: `.oinf` (v1 and v2) and `.npz` reading and writing (`Model`), below every compiler level."""
