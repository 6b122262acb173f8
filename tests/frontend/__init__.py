"""The .oi front end: lexer, parser, verifier, and executor inputs."""
