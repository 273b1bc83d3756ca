"""Use cases: each takes a request (a dataclass of plain values), returns data, and never prints; no typer, no rich."""
