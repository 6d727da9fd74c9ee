"""A small argument parser for the everyday commands, used before argparse. Pure.

Importing argparse (with gettext and locale) and building a parser costs about as much as
the rest of `ocirt list` (issue 17). A command's `add_arguments` is run against
`FastParser` instead, which records the same declarations; `parse` handles the plain
forms (`-n web`, `--time=15s`, `-q`, `--tail -1`, positionals) and gives up, returning
None, on anything else: --help, an unknown or abbreviated option, combined short flags,
`--`, a value that looks like an option, a bad value of an int option, more positionals
than declared. The caller then runs argparse, which prints the help or the usage error
exactly as before. So FastParser never accepts what argparse would refuse, and where it
accepts it gives the same values (tests/unit/cli/test_fastargs.py holds the two side by
side).
"""

from __future__ import annotations

from types import SimpleNamespace

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

_ACTIONS = (None, "store", "store_true", "append")
_POSITIONAL_NARGS = (None, "?", "*", "+")


class _Declared:
    __slots__ = ("action", "const", "default", "dest", "nargs", "type")

    def __init__(
        self,
        dest: str,
        action: str | None,
        nargs: str | None,
        default: Any,
        type: Callable[[str], Any] | None,
        const: Any = None,
    ) -> None:
        self.dest = dest
        self.action = action
        self.nargs = nargs
        self.default = default
        self.type = type
        self.const = const


class FastParser:
    """Records argparse-style declarations; `parse` handles their plain uses."""

    def __init__(self) -> None:
        self.options: dict[str, _Declared] = {}
        self.positionals: list[_Declared] = []
        self.declared: list[_Declared] = []
        # Set when a declaration uses what this parser does not know: argparse decides.
        self.unsupported = False

    def add_argument(
        self,
        *names: str,
        action: str | None = None,
        nargs: str | None = None,
        default: Any = None,
        type: Callable[[str], Any] | None = None,
        dest: str | None = None,
        metavar: str | None = None,
        help: str | None = None,
        const: Any = None,
        **other: Any,
    ) -> None:
        del metavar, help  # for the help text, which argparse prints
        if other or action not in _ACTIONS:
            self.unsupported = True
            return
        if action == "store_true" and default is None:
            default = False
        if not names[0].startswith("-"):
            if nargs not in _POSITIONAL_NARGS:
                self.unsupported = True
                return
            declared = _Declared(dest or names[0], action, nargs, default, type)
            self.positionals.append(declared)
        else:
            # An optional value ("?", with `const` when absent): `ocirt daemon`'s boolean
            # flags, as pflag reads them (`--flag`, `--flag=false`, `--flag 0`).
            if nargs not in (None, "?") or (nargs == "?" and action not in (None, "store")):
                self.unsupported = True
                return
            longs = [n for n in names if n.startswith("--")]
            derived = (longs[0] if longs else names[0]).lstrip("-").replace("-", "_")
            declared = _Declared(dest or derived, action, nargs, default, type, const)
            for name in names:
                self.options[name] = declared
        self.declared.append(declared)

    def add_argument_group(self, *title: str, **description: str) -> FastParser:
        """Groups only shape argparse's help: their options are this parser's."""
        return self

    def parse(
        self, argv: Sequence[str], defaults: dict[str, object] | None = None
    ) -> SimpleNamespace | None:
        """The parsed arguments, or None when argparse must decide."""
        if self.unsupported or len(self.positionals) > 1:
            return None
        values: dict[str, Any] = {}
        for declared in self.declared:
            default = declared.default
            values[declared.dest] = list(default) if isinstance(default, list) else default
        for dest, value in (defaults or {}).items():
            if dest in values:
                values[dest] = value
        positionals: list[str] = []
        chunks = 0
        previous_positional = False
        index = 0
        while index < len(argv):
            arg = argv[index]
            index += 1
            if arg.startswith("-") and arg != "-" and not _is_negative_number(arg):
                previous_positional = False
                name, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
                option = self.options.get(name)
                if option is None:
                    return None  # --help, --, abbreviations, -qf, -t5, unknown
                if option.action == "store_true":
                    if equals:
                        return None
                    values[option.dest] = True
                    continue
                if not equals and option.nargs == "?":
                    # argparse takes the next argument as the value unless it looks like
                    # an option; only parsers without positionals get here, so it is the
                    # flag's in argparse too.
                    following = argv[index] if index < len(argv) else None
                    if self.positionals:
                        return None
                    if following is None or (
                        following.startswith("-") and not _is_negative_number(following)
                    ):
                        values[option.dest] = option.const
                        continue
                    value = following
                    index += 1
                elif not equals:
                    if index == len(argv):
                        return None
                    value = argv[index]
                    index += 1
                    if value.startswith("-") and not _is_negative_number(value):
                        return None
                try:
                    converted = option.type(value) if option.type is not None else value
                except (TypeError, ValueError):
                    return None
                if option.action == "append":
                    values[option.dest] = [*(values[option.dest] or []), converted]
                else:
                    values[option.dest] = converted
                continue
            if not previous_positional:
                chunks += 1
            previous_positional = True
            positionals.append(arg)
        if not self.positionals:
            return None if positionals else SimpleNamespace(**values)
        spec = self.positionals[0]
        count = len(positionals)
        if spec.type is not None:
            return None  # none of ours has one; argparse converts and reports
        if spec.nargs is None:
            if count != 1:
                return None
            values[spec.dest] = positionals[0]
        elif spec.nargs == "?":
            if count > 1:
                return None
            if count == 1:
                values[spec.dest] = positionals[0]
        else:
            # argparse takes a list positional from one run of arguments only.
            if chunks > 1 or (spec.nargs == "+" and count == 0):
                return None
            if count or spec.default is None:
                values[spec.dest] = positionals
        return SimpleNamespace(**values)


def _is_negative_number(text: str) -> bool:
    """argparse's '^-\\d+$|^-\\d*\\.\\d+$': a value, not an option, in a parser
    without options that look like numbers (none of ours has one)."""
    if not text.startswith("-"):
        return False
    body = text[1:]
    if body.isdecimal():
        return True
    head, dot, tail = body.partition(".")
    return bool(dot) and tail.isdecimal() and (head == "" or head.isdecimal())
