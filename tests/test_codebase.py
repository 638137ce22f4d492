"""The codebase stays changeable: no function longer than a screen, and nothing cites a file the repo lacks."""
from __future__ import annotations

import ast
import subprocess

from conftest import REPO

MAX_FUNCTION_LINES = 80


def tracked_files(*patterns: str) -> list:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in out.stdout.splitlines() if (REPO / line).is_file()]


def long_functions(path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_no_function_in_the_pipeline_is_longer_than_a_screen():
    modules = [p for p in tracked_files("*.py") if len(p.relative_to(REPO).parts) == 1
               or p.relative_to(REPO).parts[0] == "dedup"]
    assert len(modules) > 10
    too_long = [hit for path in modules for hit in long_functions(path)]
    assert not too_long, "split these into named pieces:\n" + "\n".join(too_long)


def test_nothing_cites_a_design_file_outside_the_repo():
    design_doc = "DESIGN" + ".md"  # spelled apart so this file does not cite it either
    hits = [str(p.relative_to(REPO)) for p in tracked_files("*.py", "*.md", "*.txt", ".ci/*")
            if design_doc in p.read_text(encoding="utf-8", errors="replace")]
    assert not hits, f"these cite {design_doc}, which is not in the repo: {hits}"
