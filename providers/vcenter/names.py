"""vCenter entity names, escaped and unescaped.

vCenter escapes three characters in every ``ManagedEntity.name`` it returns (vSphere API
reference, ManagedEntity.name: "Any / (slash), \\ (backslash), character used in this name
element will be escaped. Similarly, any % (percent) character used in this name element
will be escaped, unless it is used to start an escape sequence"): ``%`` is ``%25``, ``/``
is ``%2f`` and ``\\`` is ``%5c``. So a VM a user named ``SQL/NODE 1`` comes back as
``SQL%2fNODE 1``, and ``50%`` as ``50%25``. Names read from vCenter are compared with
names typed by a user (a cluster file, a command line) only after one side is converted:
``unescape_name`` for showing and comparing what vCenter returns, ``escape_name`` for
turning a typed name into the one vCenter returns.
"""

from __future__ import annotations

import re

# The three escapes vCenter writes, in either case of hex digit on the way back.
_ESCAPED = re.compile(r"%(25|2[fF]|5[cC])")
_UNESCAPE = {"25": "%", "2f": "/", "5c": "\\"}
_ESCAPE = str.maketrans({"%": "%25", "/": "%2f", "\\": "%5c"})


def unescape_name(text: str) -> str:
    """A name as vCenter returns it, back to the characters a user typed.

    ``%25``, ``%2f`` and ``%5c`` (hex digits in either case) become ``%``, ``/`` and ``\\``,
    in one pass from left to right (so ``%252f`` is ``%2f``, not ``/``); any other ``%xx``
    is left as it is, since vCenter escapes only these three characters (ManagedEntity.name).
    """
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1).lower()], text)


def escape_name(text: str) -> str:
    """A name as a user types it, escaped as vCenter returns it: the inverse of ``unescape_name``.

    Every ``%``, ``/`` and ``\\`` is escaped (``%25``, ``%2f``, ``%5c``, lowercase hex as
    vCenter writes them), so ``unescape_name(escape_name(t)) == t`` for any text, a ``%2f``
    typed literally included. Use it to compare a typed name with ``ManagedEntity.name``.
    """
    return text.translate(_ESCAPE)
