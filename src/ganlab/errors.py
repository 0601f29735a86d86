"""The one base class of the errors a user can act on (bad params, data, store, a NaN loss).

Stages and the CLI turn these into one clear line and exit code 2, never a traceback,
without importing the modules that raise them (a stage imports only what it runs).
"""

from __future__ import annotations

from ganlab.config import ConfigError


class GanlabError(Exception):
    """An expected failure whose message says what was wrong and what was expected."""


# What stages and the CLI report as one line: ganlab's errors and the schema's, which
# imports nothing of ganlab and so can't derive from GanlabError.
USER_ERRORS = (GanlabError, ConfigError)
