"""Hand-written activation formulas recognised in the source: ``1 / (1 + exp(-x))`` is a sigmoid,
``(exp(x) - exp(-x)) / (exp(x) + exp(-x))`` a tanh. Pure ``ast`` matching."""

from __future__ import annotations

import ast


def _is_exp_call(node: ast.expr) -> ast.expr | None:
    """``torch.exp(e)`` / ``np.exp(e)`` / ``math.exp(e)`` / ``e.exp()`` -> e."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "exp":
            if node.args and isinstance(func.value, ast.Name):
                return node.args[0]
            if not node.args:
                return func.value
        if isinstance(func, ast.Name) and func.id == "exp" and node.args:
            return node.args[0]
    return None


def _is_one(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in (1, 1.0)


def _negated(node: ast.expr) -> ast.expr | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return node.operand
    return None


def activation_formula(node: ast.BinOp) -> tuple[str, ast.expr] | None:
    """Hand-written sigmoid and tanh: ``1 / (1 + exp(-x))``, ``exp(x) / (1 + exp(x))``,
    ``(exp(x) - exp(-x)) / (exp(x) + exp(-x))``."""
    if not isinstance(node.op, ast.Div):
        return None
    num, den = node.left, node.right
    if isinstance(den, ast.BinOp) and isinstance(den.op, ast.Add):
        terms = (den.left, den.right)
        one = next((t for t in terms if _is_one(t)), None)
        exp_arg = next((_is_exp_call(t) for t in terms if _is_exp_call(t) is not None), None)
        if one is not None and exp_arg is not None:
            inner = _negated(exp_arg)
            if _is_one(num) and inner is not None:
                return "sigmoid", inner
            num_arg = _is_exp_call(num)
            if num_arg is not None and ast.dump(num_arg) == ast.dump(exp_arg):
                return "sigmoid", exp_arg
        if isinstance(num, ast.BinOp) and isinstance(num.op, ast.Sub):
            a, b = _is_exp_call(num.left), _is_exp_call(num.right)
            neg = _negated(b) if b is not None else None
            if a is not None and neg is not None and ast.dump(neg) == ast.dump(a):
                return "tanh", a
    return None
