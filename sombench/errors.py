"""Errors that the CLI turns into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input: what is wrong and what to do, in one line. Raised before anything is written."""
