"""vCenter entity names: escape_name/unescape_name (providers/vcenter/names.py).

vCenter returns every ManagedEntity.name with %, / and \\ escaped as %25, %2f and %5c;
the simulated vCenter lab does the same (tests/lab/README.md, "Entity names").
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from providers.vcenter.names import escape_name, unescape_name

# Text that leans on the characters that matter: the escaped three, escape-looking
# sequences, quotes, spaces and non-ASCII letters, among any other unicode.
TRICKY = st.sampled_from(
    ["%", "/", "\\", "%2f", "%2F", "%25", "%5c", "%5C", "%41", "%2", "'", '"', " ", "Ö", "ß", "名"]
)
NAMES = st.lists(st.one_of(TRICKY, st.text(max_size=4)), max_size=12).map("".join)


@pytest.mark.parametrize(
    ("typed", "escaped"),
    [
        ("SQLNODE1", "SQLNODE1"),
        ("SQL/NODE 1", "SQL%2fNODE 1"),
        ("Ö'NODE%2", "Ö'NODE%252"),
        ("a/b\\c%d", "a%2fb%5cc%25d"),
        ("100%", "100%25"),
        ("%2f", "%252f"),  # typed literally: a percent sign, then "2f"
        ("Prod Net", "Prod Net"),
        ('say "hi"', 'say "hi"'),
        ("", ""),
    ],
)
def test_escape_as_vcenter_returns_it(typed: str, escaped: str) -> None:
    assert escape_name(typed) == escaped
    assert unescape_name(escaped) == typed


def test_escapes_are_lowercase() -> None:
    assert escape_name("/\\") == "%2f%5c"


@pytest.mark.parametrize(
    ("returned", "typed"),
    [
        ("a%2Fb", "a/b"),  # hex digits in either case
        ("a%5Cb", "a\\b"),
        ("a%41b", "a%41b"),  # not one of vCenter's three escapes: left alone
        ("50%", "50%"),  # a lone percent sign
        ("%2", "%2"),
        ("%252f", "%2f"),  # one pass: the %25 gives a "%", the "2f" after it stays
        ("%%2f", "%/"),
        ("Ö'NODE%252", "Ö'NODE%2"),
    ],
)
def test_unescape(returned: str, typed: str) -> None:
    assert unescape_name(returned) == typed


@given(NAMES)
@example("%2f")
@example("a/b\\c%d")
@example("%252f%5C")
def test_round_trip(typed: str) -> None:
    escaped = escape_name(typed)
    assert unescape_name(escaped) == typed
    # what vCenter returns never holds the characters it escapes
    assert "/" not in escaped and "\\" not in escaped
    # names without the three characters come back as typed
    if not any(c in typed for c in "%/\\"):
        assert escaped == typed


@given(NAMES)
def test_escaped_names_are_fixed_points(typed: str) -> None:
    # a name as vCenter returns it, unescaped and escaped again, is the same name
    escaped = escape_name(typed)
    assert escape_name(unescape_name(escaped)) == escaped


@given(NAMES)
def test_every_percent_of_an_escaped_name_starts_an_escape(typed: str) -> None:
    escaped = escape_name(typed)
    for i, c in enumerate(escaped):
        if c == "%":
            assert escaped[i + 1 : i + 3] in ("25", "2f", "5c")
