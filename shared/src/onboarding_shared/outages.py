"""Whether an error says a dependency cannot be reached, rather than that the work in hand is
wrong: an HTTP request then answers 503, and a consumer holds the message without counting an
attempt against it (the message is not at fault)."""

from __future__ import annotations

import errno
import socket

from sqlalchemy import exc as sa_exc

_CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


class DependencyUnavailable(Exception):
    """A dependency that is not a database (an SMTP server, say) cannot take any work now.
    Raised by a handler that has recorded what it needs to: the message is not at fault."""


# SQLSTATE classes that say the server cannot serve now, whatever the statement: 08 connection
# exceptions, 53 insufficient resources ("too many clients already"), 57P shutting down.
_OUTAGE_SQLSTATES = ("08", "53", "57P")


def _outage_sqlstate(driver_error: BaseException | None) -> bool:
    state = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    return isinstance(state, str) and state.startswith(_OUTAGE_SQLSTATES)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says a dependency cannot be reached (rather than a bug, or a refusal
    of this particular statement)."""
    if isinstance(error, DependencyUnavailable):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return (
            error.connection_invalidated
            or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
            or _outage_sqlstate(error.orig)
        )
    if isinstance(error, sa_exc.TimeoutError):  # no connection free in the pool in time
        return True
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(error, OSError) and error.errno in _CONNECTION_ERRNOS
