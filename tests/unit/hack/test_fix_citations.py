"""hack/fix_citations.py: citations in comments and docstrings are rewritten, code and
other strings are not, long lines are wrapped inside their comment, and a second run
changes nothing."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "hack" / "fix_citations.py"


@pytest.fixture(scope="module")
def fix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fix_citations", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PY = '''"""A module (kanto-reference §3, ocirt decision 10)."""

MESSAGE = "see kanto-reference §3 and decision 4"  # but this comment: decision 4


def f() -> None:
    """Docstring citing runtime-net-logs.md §3.2 and oci-image.md §1 "docker.io names"."""
    # decisions 1 and 3 hold here, as runtime-net-logs §6 says
    return None
'''


def test_python_comments_and_docstrings_only(fix: ModuleType, tmp_path: Path) -> None:
    out = fix.rewrite_source(tmp_path / "m.py", PY)
    assert '"""A module (docs/kanto-compatibility.md §3, docs/kanto-compatibility.md ' in out
    assert "decision 10)." in out
    # A string that is data keeps its text.
    assert 'MESSAGE = "see kanto-reference §3 and decision 4"' in out
    # The line grew past 100 columns: the trailing comment continues on a line of its own.
    assert "# but this comment:\n# docs/kanto-compatibility.md decision 4\n" in out
    assert "docs/runtime-notes.md §3.2 and docs/oci-image-notes.md §1" in out
    assert "# docs/kanto-compatibility.md decisions 1 and 3 hold here" in out
    assert "as docs/runtime-notes.md §6 says" in out
    ast.parse(out)
    assert all(len(line) <= fix.LINE_LIMIT for line in out.splitlines())
    assert fix.rewrite_source(tmp_path / "m.py", out) == out


C = """/* The monitor (ocirt decision 10); see runtime-net-logs.md §3.1 for the escaping of
 * the log lines.
 */
static const char *s = "kanto-reference §1"; // decision 2
"""


def test_c_comments_only(fix: ModuleType, tmp_path: Path) -> None:
    out = fix.rewrite_source(tmp_path / "m.c", C)
    assert "/* The monitor (docs/kanto-compatibility.md decision 10); see" in out
    assert 'static const char *s = "kanto-reference §1";' in out
    assert "// docs/kanto-compatibility.md decision 2" in out
    lines = out.splitlines()
    assert all(len(line) <= fix.LINE_LIMIT for line in lines)
    # The overflow went to the start of the comment's next line, which keeps its " * ".
    assert lines[1].startswith(" * ") and "escaping" in "\n".join(lines[:3])
    assert fix.rewrite_source(tmp_path / "m.c", out) == out


def test_unrelated_words_stay(fix: ModuleType, tmp_path: Path) -> None:
    source = "# the policy decision is made here; test_x_decision_1 is a name\n"
    assert fix.rewrite_source(tmp_path / "m.py", source) == source


def test_check_mode_reports_without_writing(fix: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(PY)
    assert fix.main(["--check", str(tmp_path)]) == 1
    assert target.read_text() == PY
    assert fix.main([str(tmp_path)]) == 0
    assert fix.main(["--check", str(tmp_path)]) == 0


def test_kanto_features_citations(fix: ModuleType, tmp_path: Path) -> None:
    source = (
        '"""Metrics (kanto-features §2.1, features_metrics.go); kanto-features.md §2.2."""\n'
        "# the agent: kanto-features.md, and docs/kanto-features-notes.md §2.3 already\n"
        'NOTE = "kanto-features §2.4"\n'
    )
    out = fix.rewrite_source(tmp_path / "m.py", source)
    assert '"""Metrics (docs/kanto-features-notes.md §2.1, features_metrics.go);' in out
    # The docstring grew past 100 columns; the wrap keeps a document and its section together.
    assert '\ndocs/kanto-features-notes.md §2.2."""' in out
    assert "# the agent: docs/kanto-features-notes.md, and docs/kanto-features-notes.md §2.3" in out
    assert 'NOTE = "kanto-features §2.4"' in out
    assert all(len(line) <= fix.LINE_LIMIT for line in out.splitlines())
    assert fix.rewrite_source(tmp_path / "m.py", out) == out


def test_the_script_skips_itself(fix: ModuleType) -> None:
    # Its rule table spells the old citations; rewriting them would break the rules.
    assert SCRIPT.read_text() != fix.rewrite_source(SCRIPT, SCRIPT.read_text())
    assert SCRIPT not in [p.resolve() for p in fix.files([str(SCRIPT.parent)])]
    assert list(fix.files([str(SCRIPT)])) == []
