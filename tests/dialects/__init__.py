"""The oi and oi_table dialects: construction, printing/parsing round trips, the table level."""
