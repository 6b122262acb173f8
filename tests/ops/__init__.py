"""The op registry: references, loop nests of ops, upstream parity."""
