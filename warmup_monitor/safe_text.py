"""Text read from logs, made safe to print on a terminal.

Run and folder names, tags, messages that quote them and config values come from files the
user does not control. Printed as they are, an ESC starts a terminal escape sequence (colours,
cursor moves, window titles, sometimes worse), a BEL rings, and a newline or carriage return
forges a line of our output ("… CRITICAL …"). :func:`for_terminal` shows every such character
as a visible escape instead (``\\x1b``, ``\\n``, ``\\u202e``).
"""

from __future__ import annotations

from .errors import printable

__all__ = ["for_terminal"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL, C1 controls, and the bidirectional overrides that reorder what is shown.
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F)]
_UNSAFE += [*range(0x2066, 0x206A)]
_TABLE = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in _UNSAFE
}


def for_terminal(text: object) -> str:
    """``str(text)`` with control characters, bidi overrides and the lone surrogates of
    undecodable file names shown as escapes."""
    return printable(str(text).translate(_TABLE))
