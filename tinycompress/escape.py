"""Quoting for every language tinycompress generates: nothing from a file name, a model or a board
file reaches a generated file except through one of these (the templates use them as filters).

Each function either returns text that the target language reads back as exactly that value (or, for
comments and banners, as inert text), or refuses with a TinyCompressError naming what it refused.
"""
from __future__ import annotations

import json
import re
import shlex

from .errors import TinyCompressError

C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Paths make functions ($(wildcard ...)) and the shell both take as one word, unchanged.
MAKE_PATH = re.compile(r"[A-Za-z0-9_./+-][A-Za-z0-9_./+,=@%-]*")
ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _decoded(text: str | bytes) -> str:
    """Text with every byte that is not UTF-8 (bytes, or a str carrying them as surrogate escapes) as
    U+FFFD."""
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    try:
        data = str(text).encode("utf-8", errors="surrogateescape")   # file names carry bad bytes so
    except UnicodeEncodeError:                                        # a lone surrogate of another kind
        data = str(text).encode("utf-8", errors="replace")
    return data.decode("utf-8", errors="replace")


def one_line(text: str | bytes) -> str:
    """A message for the terminal: no ANSI escapes, no control characters, no non-UTF-8 bytes, one line."""
    text = ANSI_ESCAPE.sub("", _decoded(text))
    text = re.sub(r"\s*[\r\n]+\s*", " ", text).replace("\t", " ")
    return CONTROL.sub("?", text)


def safe_text(text: str | bytes) -> str:
    """Text for a comment or banner in any generated file (C, linker script, Make, Python, INI): printable
    ASCII on one line, no backslash (Make continues a comment after one), no C comment opener or
    terminator and no trigraph (`??`). File names are shown through this, reduced but recognizable."""
    text = "".join(c if " " <= c <= "~" else "?" for c in _decoded(text)).replace("\\", "/")
    text = text.replace("*/", "* /").replace("/*", "/ *")
    return re.sub(r"\?(?=\?)", "?_", text)


c_comment = safe_text


def c_string(text: str | bytes) -> str:
    """A C string literal, quotes included, that reads back as the text's UTF-8 bytes. Every byte outside
    printable ASCII, and `?` (trigraphs), becomes a three-digit octal escape, which no following
    character can extend."""
    data = _decoded(text).encode("utf-8")
    out = []
    for byte in data:
        c = chr(byte)
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~" and c != "?":
            out.append(c)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_identifier(name: str) -> str:
    """The name, checked to be a C identifier (what load._name_layers makes of every layer name)."""
    if not isinstance(name, str) or not C_IDENTIFIER.fullmatch(name):
        raise TinyCompressError(f"{one_line(repr(name))} is not a C identifier (letters, digits and _, "
                                "not starting with a digit, at most 63 characters)")
    return name


def _no_controls(text: str, what: str) -> str:
    if CONTROL.search(text) or text != _decoded(text):
        raise TinyCompressError(f"{what} {one_line(repr(text))} holds a newline, a control character or "
                                "non-UTF-8 bytes; it cannot go into a generated file")
    return text


def make_arg(text: str) -> str:
    """One shell word in the value of a Makefile variable assignment that a recipe passes to the shell:
    shell-quoted, then `$` doubled and `#` escaped for make. No newline or control character."""
    return shlex.quote(_no_controls(str(text), "the Makefile value")).replace("$", "$$").replace("#", "\\#")


def make_path(path, what: str = "the path") -> str:
    """A path that make functions ($(wildcard ...)) and the shell both read as one word, unchanged:
    checked against a strict pattern rather than quoted, since the two quote differently."""
    text = str(path)
    if not MAKE_PATH.fullmatch(text):
        raise TinyCompressError(f"{what} {one_line(repr(text))} cannot go into a Makefile: use a path of "
                                "letters, digits and ._/+,=@%- only, not starting with , = @ or % "
                                "(a symlink will do)")
    return text


def ini_value(text) -> str:
    """A value in platformio.ini: PlatformIO reads `;` and `#` as inline comments and `${...}` as
    interpolation, and a newline would start a key of its own, so none of them may appear."""
    text = _no_controls(str(text), "the platformio.ini value")
    if re.search(r"[;#]|\$\{|%", text):
        raise TinyCompressError(f"the platformio.ini value {one_line(repr(text))} holds ; # % or ${{, "
                                "which PlatformIO would read as a comment or an interpolation")
    return text


def toml_string(text: str) -> str:
    """A TOML basic string, quotes included (JSON's escapes are TOML's, except for non-ASCII, kept as is)."""
    return json.dumps(_decoded(text), ensure_ascii=False).replace("\x7f", "\\u007f")


def json_string(text: str) -> str:
    """A JSON string, quotes included, ASCII only."""
    return json.dumps(_decoded(text))


FILTERS = {"c_comment": c_comment, "c_string": c_string, "c_ident": c_identifier, "safe_text": safe_text,
           "make_arg": make_arg, "make_path": make_path, "ini": ini_value, "toml_string": toml_string,
           "json_string": json_string}
