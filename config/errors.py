"""Errors a scheduler can tell apart by exit code.

| exit | error              | meaning                                              |
| ---- | ------------------ | ---------------------------------------------------- |
| 0    |                    | the run did what was asked                           |
| 1    | (anything else)    | internal error: a bug or an unexpected failure       |
| 2    | ConfigError        | a config file or command-line argument is wrong      |
| 3    | SourceError        | a source is unreachable, unreadable or not as mapped |
| 4    | ValidationStopped  | a batch-level expectation stopped the run            |
| 5    | LakeLocked         | another run holds the lake                           |
"""

from __future__ import annotations


class CdiError(Exception):
    """Base of the errors cdi reports as one line with a documented exit code."""

    exit_code = 1


class ConfigError(CdiError):
    exit_code = 2


class SourceError(CdiError):
    exit_code = 3


class ValidationStopped(CdiError):
    exit_code = 4


class LakeLocked(CdiError):
    exit_code = 5
