"""What is secret, and the one place that takes secrets out of everything esbgen shows or stores.

A secret is

* the value of a setting whose name has a word among KEY, KEYS, TOKEN, SECRET, PASSWORD, PASSWD, PWD,
  PASS, SALT, CREDENTIAL(S), PRIVATE, or contains SECRET, TOKEN, PASSWORD or PASSWD (``SECRET_KEY``,
  ``ESB_TOKEN``, ``ENCRYPT_KEY``, ``BK_APP_SECRET``);
* a value under such a key in a mapping, whatever the setting (``DATABASES``' ``'PASSWORD'``);
* the password of a URL's user information (``amqp://user:PASSWORD@host``), anywhere.

Every line esbgen says, every error, every ``--json`` object and every plan file passes through
``mask``: each secret value esbgen has seen in a settings file (``learn_file``, ``learn``) is
replaced by ``********`` wherever it stands, and any line that assigns a secret (``SECRET_KEY =
'...'``, ``'PASSWORD': '...'``) or holds a URL with a password is masked as well, so a secret of a
file esbgen never learnt from (the CE's, a diff's other side) is not shown either.  Masking too much
is harmless; too little shows a secret.
"""

from __future__ import annotations

import ast
import io
import os
import re
import stat
import tokenize
from pathlib import Path
from typing import Any, Iterable

MASK = "********"
SHORTEST = 4  # a shorter value is masked by its line, never wherever it stands ("root", "1")

SECRET_WORDS = frozenset({
    "KEY", "KEYS", "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "PWD", "PASS",
    "SALT", "CREDENTIAL", "CREDENTIALS", "PRIVATE",
})
SECRET_PARTS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL")


def secret_word(text: str) -> str | None:
    """The word that makes a name secret (``KEY`` of ``SECRET_KEY``), or None."""
    upper = text.upper()
    for word in re.split(r"[^A-Z0-9]+", upper):
        if word in SECRET_WORDS:
            return word
    return next((part for part in SECRET_PARTS if part in upper), None)


def secret_reason(name: str, *value_codes: str) -> str | None:
    """Why a setting is a secret: its name, or a mapping of its value (on any side) with a secret key; or None."""
    word = secret_word(name)
    if word is not None:
        return f"secret: {word} in its name"
    for code in value_codes:
        try:
            tree = ast.parse("(\n" + code + "\n)", mode="eval")
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key in node.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and secret_word(key.value):
                        return f"secret: it holds {key.value!r}"
    return None


# --- the secret values of a settings file ---------------------------------------------------------------

_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^\s/@'\"]*?):([^\s'\"]*)@")


def url_passwords(text: str) -> list[str]:
    return [match.group(2) for match in _URL_PASSWORD.finditer(text) if match.group(2)]


def _string_value(token: str) -> str | None:
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def secret_values(data: bytes) -> set[str]:
    """Every secret value a settings module's text holds, as Python reads it and as it is written.

    Read by tokens, not parsed, so a legacy ESB's Python 2 settings are read too: a string is secret
    when the statement assigns a secret name, when it follows a secret key (``'PASSWORD': ``,
    ``PASSWORD=``), or for the password of a URL in it.  A string that is a call's first argument
    (``env.str("BK_APP_SECRET")``) names a variable and is no secret.
    """
    text = data.decode("utf-8", "replace")
    found: set[str] = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = []
    depth = 0
    statement_secret = False
    at_statement_start = True
    previous: list[tokenize.TokenInfo] = []
    for token in tokens:
        kind, string = token.type, token.string
        if kind in (tokenize.NEWLINE, tokenize.ENDMARKER) or (kind == tokenize.OP and string == ";" and depth == 0):
            statement_secret, at_statement_start, previous = False, True, []
            continue
        if kind in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            continue
        if kind == tokenize.OP and string in "([{":
            depth += 1
        elif kind == tokenize.OP and string in ")]}":
            depth = max(0, depth - 1)
        if at_statement_start and kind == tokenize.NAME and depth == 0:
            statement_secret = secret_word(string) is not None
        at_statement_start = False
        if kind == tokenize.STRING:
            value = _string_value(string)
            if value is not None:
                found.update(url_passwords(value))
                after_key = len(previous) >= 2 and previous[-1].string in (":", "=") and (
                    (previous[-2].type == tokenize.STRING and secret_word(_string_value(previous[-2].string) or ""))
                    or (previous[-2].type == tokenize.NAME and previous[-1].string == "=" and secret_word(previous[-2].string)))
                names_a_variable = (len(previous) >= 2 and previous[-1].string == "(" and previous[-2].type == tokenize.NAME)
                if (statement_secret and not names_a_variable) or after_key:
                    found.add(value)
                    inner = string.lstrip("rRbBuUfF")[1:-1].strip("'\"")
                    if inner and inner != value:
                        found.add(inner)  # as it is written, escapes and all (what a diff line shows)
        previous.append(token)
    for line in text.splitlines():  # what tokens could not read: a line that assigns a secret, alone
        found.update(_line_secrets(line))
    return {value for value in found if len(value) >= SHORTEST}


_ASSIGNED = re.compile(r"""(?P<name>[A-Za-z_][A-Za-z0-9_]*)['"]?\s*(?:=|:)\s*[rRbBuU]{0,2}(?P<q>['"])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)""")


def _line_secrets(line: str) -> list[str]:
    found = [m.group("value") for m in _ASSIGNED.finditer(line) if secret_word(m.group("name")) and m.group("value")]
    return found + url_passwords(line)


# --- what this run has learnt, and masking -------------------------------------------------------------

_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def forget() -> None:
    """Start a run afresh (the command line does, so an in-process caller's runs do not mix)."""
    global _pattern
    _known.clear()
    _pattern = None


def learn(values: Iterable[str]) -> None:
    global _pattern
    new = {value for value in values if len(value) >= SHORTEST} - _known
    if new:
        _known.update(new)
        _pattern = None


def learn_file(path: Path) -> None:
    """Learn the secrets of a settings file (a regular file only: nothing else is opened)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return
        data = Path(path).read_bytes()
    except OSError:
        return
    learn(secret_values(data))


def known() -> frozenset[str]:
    return frozenset(_known)


def _known_pattern() -> re.Pattern[str] | None:
    global _pattern
    if _pattern is None and _known:
        _pattern = re.compile("|".join(re.escape(value) for value in sorted(_known, key=len, reverse=True)))
    return _pattern


def _mask_assignment(match: re.Match[str]) -> str:
    if not secret_word(match.group("name")) or not match.group("value"):
        return match.group(0)
    start, end = match.span("value")
    whole = match.group(0)
    offset = match.start()
    return whole[: start - offset] + MASK + whole[end - offset:]


def _mask_url_password(match: re.Match[str]) -> str:
    if match.group(2) in ("***", MASK):  # masked already (esbgen.db.connection.redact_url's mask)
        return match.group(0)
    return match.group(0)[: match.start(2) - match.start()] + MASK + "@"


def mask(text: str) -> str:
    """``text`` with every secret in it replaced by ``********``."""
    if not text:
        return text
    pattern = _known_pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "=" in text or ":" in text:
        # each pattern only where it can match (a quoted value, a URL's "@"): the 20,000 lines of a
        # verify took 1.3 s to mask, none of them holding either
        if "'" in text or '"' in text:
            text = _ASSIGNED.sub(_mask_assignment, text)
        if "@" in text:
            text = _URL_PASSWORD.sub(_mask_url_password, text)
    return text


def mask_data(data: Any) -> Any:
    """A JSON-like object with every string in it masked."""
    if isinstance(data, str):
        return mask(data)
    if isinstance(data, dict):
        return {mask_data(key): mask_data(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask_data(item) for item in data]
    return data


def holds_secret(data: bytes, settings: bool = False) -> bool:
    """Whether bytes esbgen would store hold a secret value it has learnt, or (``settings``: text of a
    settings module) any secret value of their own."""
    pattern = _known_pattern()
    text = data.decode("utf-8", "replace")
    if pattern is not None and pattern.search(text):
        return True
    return settings and bool(secret_values(data))
