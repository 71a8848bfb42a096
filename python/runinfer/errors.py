"""The one exception type of the runinfer binding."""

from __future__ import annotations

from runinfer import _lib


class Error(Exception):
    """A runinfer call failed.

    status   the ri_status code (an int; runinfer.RI_ERR_* constants), never RI_OK.
    message  the library's text: what failed, which node/input/file, the rule and the values.
    The exception pickles (Beam sends it across processes in dead-letter outputs)."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status = int(status)
        self.message = message

    @property
    def status_name(self) -> str:
        return _lib.STATUS_NAMES.get(self.status, f"status {self.status}")

    def __str__(self) -> str:
        return f"{self.message} [{self.status_name}]" if self.message else self.status_name

    def __reduce__(self):
        return (type(self), (self.status, self.message))


def check(status: int, message_fn) -> None:
    """Raise Error(status, message_fn()) unless status is RI_OK. message_fn is called only on failure."""
    if status != _lib.RI_OK:
        msg = message_fn() if callable(message_fn) else message_fn
        if not msg:
            msg = _lib.text(_lib.lib().ri_status_str(status))
        raise Error(status, msg)
