"""What a run is: its spec and identity, the outcome enums, the store (the only owner of file names), the checkpoint format, pre-run checks and provenance."""
