"""Structured errors: every layer raises them, the CLI alone turns them into one line on stderr and
exit code 2 (sombench/cli/main.py). Library code speaks of request fields (`steps`, `results`), never
of command-line flags; the CLI names the flag a field came from."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: what is wrong and what to do, in one line. Raised before anything is written."""


class InvalidValue(UserError):
    """A request field holds a value outside its domain.

    `field` is the request's field name (`steps`, `eval_every`, `results`); `problem` completes the
    sentence that starts with the field's name ("must be a positive integer, got 0"). The CLI prints
    it as `--steps must be ...`; a library caller reads `field` and `problem`."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")
