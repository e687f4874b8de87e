"""(signature + docstring, body) pairs from Python source: a free, offline SFT task.

For each function with a docstring, the prompt is the ``def`` line(s) and the docstring, and
the response is the rest of the body, both exactly as written in the file (whole lines),
dedented by the ``def`` line's indentation. ``prompt + response`` is therefore the function's
own source and parses on its own. Decorators are not part of the prompt.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def docstring_function_pairs(source: str) -> Iterator[tuple[str, str]]:
    """(prompt, response) for every documented function in ``source``, in file order.

    Files that do not parse are skipped, as are functions whose body after the docstring is
    empty or only ``pass`` / ``...``, and functions whose first statement shares the
    docstring's last line (the prompt would have to cut a line in half).
    """
    tree = _parse(source)
    if tree is None:
        return
    # Split on "\n" only: ast numbers lines that way, str.splitlines() also splits on \f etc.
    lines = source.split("\n")
    functions = [node for node in ast.walk(tree) if isinstance(node, FunctionNode)]
    for function in sorted(functions, key=lambda node: (node.lineno, node.col_offset)):
        pair = _pair(function, lines)
        if pair is not None:
            yield pair


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences in old code
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):  # bad syntax, null bytes, deep nesting
        return None


def _pair(function: FunctionNode, lines: list[str]) -> tuple[str, str] | None:
    docstring, *rest = function.body
    if not _is_docstring(docstring) or all(_is_placeholder(statement) for statement in rest):
        return None
    assert docstring.end_lineno is not None and function.end_lineno is not None  # set by ast.parse
    if rest[0].lineno <= docstring.end_lineno:
        return None
    indent = function.col_offset
    prompt = _dedent(lines[function.lineno - 1 : docstring.end_lineno], indent)
    response = _dedent(lines[docstring.end_lineno : function.end_lineno], indent)
    return prompt, response


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _is_placeholder(statement: ast.stmt) -> bool:
    """``pass`` or ``...``: a body with nothing to learn."""
    is_ellipsis = (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and statement.value.value is Ellipsis
    )
    return isinstance(statement, ast.Pass) or is_ellipsis


def _dedent(lines: list[str], indent: int) -> str:
    """Remove up to ``indent`` leading blanks per line (fewer where a line has fewer, e.g.
    docstring lines written at column 0), keeping indentation relative to the ``def`` line.
    ``textwrap.dedent`` would not do: one such column-0 line makes it remove nothing."""
    out = []
    for line in lines:
        blanks = len(line) - len(line.lstrip(" \t"))
        out.append(line[min(indent, blanks) :])
    return "\n".join(out) + "\n"
