"""One exception type for every user-facing failure, with the exit code the CLI returns."""

# Exit codes, documented in README.md.
EXIT_ERROR = 1          # bad input, build or run failure
EXIT_USAGE = 2          # click's own usage errors
EXIT_BUDGET = 3         # the model does not fit the board
EXIT_MISMATCH = 4       # firmware output differs from the reference interpreter
EXIT_TOOL_MISSING = 5   # compiler, emulator or Python package not installed


def pip_hint(*packages: str) -> str:
    """`pip install` of `packages` with the versions tinycompress accepts (from its installed metadata,
    pyproject.toml's ranges), which works in a checkout and outside one alike."""
    import re
    from importlib.metadata import PackageNotFoundError, requires
    try:
        wanted = requires("tinycompress") or []
    except PackageNotFoundError:
        wanted = []
    spec = {}
    for line in wanted:
        requirement = line.split(";")[0].strip()
        spec[re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower()] = requirement.replace(" ", "")
    return "pip install " + " ".join(f"'{spec.get(p, p)}'" for p in packages)


class TinyCompressError(Exception):
    """A problem the user can fix; the CLI prints `error: <message>` on one line."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):   # pickled with its exit code: a Ray task's error reaches the driver whole
        return type(self), (str(self), self.exit_code)
