"""The docs stay true: the reliability table's tests exist, and relative links resolve."""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


def defined_tests(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def reliability_rows():
    with open(os.path.join(ROOT, "docs", "reliability.md"), encoding="utf-8") as f:
        text = f.read()
    table = text.split("| bad input |", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in table.splitlines()[2:] if line.startswith("|")]
    return [line for line in lines if not line.startswith("| **")]  # section headings


def test_reliability_table_has_50_cases_each_with_an_existing_test():
    rows = reliability_rows()
    assert len(rows) >= 50, f"{len(rows)} cases"
    known = {name: defined_tests(os.path.join(TESTS, name)) for name in os.listdir(TESTS) if name.endswith(".py")}
    for row in rows:
        refs = re.findall(r"(test_\w+\.py)::(test_\w+)", row)
        assert refs, f"no test named in: {row}"
        for file, func in refs:
            assert file in known, f"{file} (in: {row[:80]})"
            assert func in known[file], f"{file}::{func} does not exist (in: {row[:80]})"


@pytest.mark.parametrize("page", ["README.md"] + [os.path.join("docs", p) for p in sorted(os.listdir(os.path.join(ROOT, "docs"))) if p.endswith(".md")])
def test_relative_links_resolve(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold commands, not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|#|mailto:", target):
            continue
        path = target.split("#", 1)[0]
        assert os.path.exists(os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path))), f"{page}: {target}"
