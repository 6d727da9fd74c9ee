#!/usr/bin/env python3
"""Point code comments at the repository's own docs instead of files it does not have.

Usage: python3 hack/fix_citations.py [--check] PATH...   (files or directories)

Rewrites, in comments and docstrings only (Python: `#` comments and docstrings; C:
`/* */` and `//` comments), never in code or other string literals:

    kanto-reference[.md] §N      -> docs/kanto-compatibility.md §N
    kanto-reference.md           -> docs/kanto-compatibility.md
    [ocirt] decision N           -> docs/kanto-compatibility.md decision N
    [ocirt] decisions N and M    -> docs/kanto-compatibility.md decisions N and M
    runtime-net-logs[.md]        -> docs/runtime-notes.md
    oci-image.md                 -> docs/oci-image-notes.md
    kanto-features[.md] §N       -> docs/kanto-features-notes.md §N
    kanto-features.md            -> docs/kanto-features-notes.md

Section numbers are kept: the docs keep the numbering of the notes they replace. A line
that grows past 100 columns is wrapped, the continuation keeping the comment's prefix
(`# `, ` * `, `// ` or a docstring's indentation). Running it twice changes nothing.
With --check it only lists what it would change and exits 1 if anything would. The
script never rewrites itself: its rule table names the old citations on purpose.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

KANTO = "docs/kanto-compatibility.md"
FEATURES = "docs/kanto-features-notes.md"
RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<![\w/.-])kanto-reference(?:\.md)?(?= ?§)"), KANTO),
    (re.compile(r"(?<![\w/.-])kanto-reference\.md"), KANTO),
    # "decision 3", "ocirt decision 10", "decisions 1 and 3"; not one already rewritten.
    (
        re.compile(r"(?<!\.md )(?<![\w-])(?:ocirt )?(decisions? \d+(?:(?:, | and | or )\d+)*)\b"),
        KANTO + r" \1",
    ),
    (re.compile(r"(?<![\w/.-])runtime-net-logs(?:\.md)?"), "docs/runtime-notes.md"),
    (re.compile(r"(?<![\w/.-])oci-image\.md"), "docs/oci-image-notes.md"),
    (re.compile(r"(?<![\w/.-])kanto-features(?:\.md)?(?= ?§)"), FEATURES),
    (re.compile(r"(?<![\w/.-])kanto-features\.md"), FEATURES),
]
SUFFIXES = {".py", ".c", ".h", ".pyi"}
LINE_LIMIT = 100  # ruff's line-length


def rewrite_text(text: str) -> str:
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def _python_spans(source: str) -> Iterator[tuple[int, int]]:
    """(start, end) offsets of comments and docstrings in Python source."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(row: int, col: int) -> int:
        return starts[row - 1] + col

    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield offset(*token.start), offset(*token.end)
        elif token.type == tokenize.STRING and previous in (
            tokenize.NEWLINE,
            tokenize.NL,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENCODING,
        ):
            # A string that is a statement of its own: a docstring (or a bare string).
            yield offset(*token.start), offset(*token.end)
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type


_C_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


def _c_spans(source: str) -> Iterator[tuple[int, int]]:
    for match in _C_COMMENT.finditer(source):
        if match.group().startswith(("/*", "//")):  # string and char literals are skipped
            yield match.span()


def _continuation(line: str, python: bool) -> str:
    """What a wrapped part of `line` starts with, to stay inside the same comment."""
    indent = line[: len(line) - len(line.lstrip())]
    body = line.lstrip()
    if python:
        if "#" in line and not body.startswith(('"', "'")):
            return line[: line.index("#") - len(line[: line.index("#")].lstrip())] + "# "
        return indent  # a docstring line
    if body.startswith("//"):
        return indent + "// "
    if body.startswith("/*"):
        return indent + " * "
    if body.startswith("*"):
        return indent + "* "
    return indent


# Never broken apart, so that a second run still sees the citation as rewritten, and a
# reader sees a document and its section on one line.
_KEEP_TOGETHER = re.compile(
    r"(?<=kanto-compatibility\.md) (?=decisions? )|(?<=decision) (?=\d)|(?<=\.md) (?=§)"
)
_GLUE = "\x00"


def _wrap(line: str, python: bool) -> list[str]:
    lines = []
    prefix = _continuation(line, python)
    line = _KEEP_TOGETHER.sub(_GLUE, line)
    while len(line) > LINE_LIMIT:
        cut = line.rfind(" ", len(prefix) + 1, LINE_LIMIT + 1)
        if cut <= len(prefix.rstrip()):
            break  # one word longer than the room: leave it
        lines.append(line[:cut].rstrip())
        line = prefix + line[cut + 1 :]
    lines.append(line)
    return [part.replace(_GLUE, " ") for part in lines]


def rewrite_source(path: Path, source: str) -> str:
    python = path.suffix in (".py", ".pyi")
    spans = list(_python_spans(source) if python else _c_spans(source))
    out = []
    last = 0
    for start, end in spans:
        out.append(source[last:start])
        out.append(rewrite_text(source[start:end]))
        last = end
    out.append(source[last:])
    result = "".join(out)
    if result == source:
        return source
    return _reflow(result, set(source.splitlines()), python)


def _block_of(text: str, python: bool) -> dict[int, int]:
    """Line index -> an id of the comment block or docstring the line is in. Lines of one
    block may take words from each other when a line overflows."""
    blocks: dict[int, int] = {}
    spans = _python_spans(text) if python else _c_spans(text)
    for number, (start, end) in enumerate(spans):
        first = text.count("\n", 0, start)
        last = text.count("\n", 0, end)
        for line in range(first, last + 1):
            blocks[line] = number
    if python:
        # Consecutive full-line comments with the same indentation form one block.
        lines = text.splitlines()
        for i in range(1, len(lines)):
            above, here = lines[i - 1], lines[i]
            if (
                here.lstrip().startswith("#")
                and above.lstrip().startswith("#")
                and _continuation(above, True) == _continuation(here, True)
                and i - 1 in blocks
            ):
                blocks[i] = blocks[i - 1]
    return blocks


_NOT_PROSE = (" ", "-", "*", "|", ">", '"' * 3, "'" * 3)


def _takes_words(line: str, prefix: str) -> bool:
    """Whether a following line can take overflowing words at its start (plain prose)."""
    if not line.startswith(prefix):
        return False
    body = line[len(prefix) :]
    if not body.strip() or body.startswith(_NOT_PROSE):
        return False
    return not re.match(r"\d+\.\s|\*/", body)


def _reflow(text: str, old: set[str], python: bool) -> str:
    """Wrap the rewritten lines that grew past LINE_LIMIT, moving the overflow to the start
    of the next line of the same comment when that is prose, else onto a new line."""
    blocks = _block_of(text, python)
    lines = text.splitlines(keepends=True)
    touched = {i for i, line in enumerate(lines) if line.rstrip("\n") not in old}
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\n")
        if i not in touched or len(line) <= LINE_LIMIT:
            i += 1
            continue
        ending = lines[i][len(line) :]
        prefix = _continuation(line, python)
        head, *rest = _wrap(line, python)
        if not rest:
            i += 1
            continue
        overflow = " ".join(part[len(prefix) :] for part in rest)
        lines[i] = head + ending
        following = lines[i + 1].rstrip("\n") if i + 1 < len(lines) else None
        same_block = blocks.get(i) is not None and blocks.get(i) == blocks.get(i + 1)
        tail = line[len(prefix) :]
        closes = '"' * 3 in tail or "'" * 3 in tail or "*/" in tail
        if following is not None and same_block and not closes and _takes_words(following, prefix):
            lines[i + 1] = prefix + overflow + " " + lines[i + 1][len(prefix) :]
        else:
            lines.insert(i + 1, prefix + overflow + ending)
            blocks = {k if k <= i else k + 1: v for k, v in blocks.items()}
            touched = {k if k <= i else k + 1 for k in touched}
        touched.add(i + 1)
        i += 1
    return "".join(lines)


SELF = Path(__file__).resolve()


def files(paths: list[str]) -> Iterator[Path]:
    """The source files under `paths`, this script excepted (its RULES and docstring
    spell the old citations, which must stay as they are)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SUFFIXES and ".venv" not in p.parts and p.is_file()
            )
        else:
            found = [path] if path.suffix in SUFFIXES else []
        yield from (p for p in found if p.resolve() != SELF)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    changed = 0
    for path in files(paths):
        source = path.read_text()
        result = rewrite_source(path, source)
        if result == source:
            continue
        changed += 1
        print(f"{'would rewrite' if check else 'rewrote'} {path}")
        if not check:
            path.write_text(result)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
