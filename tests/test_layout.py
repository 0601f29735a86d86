"""The code's shape that issue 39 asked for, kept: thin stages and short functions."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ganlab"
STAGE_LINES = 120  # a stage parses paths, reads its sections, calls the library, writes outputs
FUNCTION_LINES = 60


def test_every_stage_is_thin():
    long = {p.name: n for p in (SRC / "stages").glob("*.py") if (n := _lines(p)) > STAGE_LINES}
    assert not long, f"stages over {STAGE_LINES} lines: {long}"


def test_no_function_in_the_library_is_long():
    long = {
        f"{path.relative_to(SRC)}:{node.name}": node.end_lineno - node.lineno + 1
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES
    }
    assert not long, f"functions over {FUNCTION_LINES} lines: {long}"


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())
