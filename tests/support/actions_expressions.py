"""GitHub Actions expressions (`${{ … }}` and `if:`), for the runner stand-in; tests only.

Implements the language as GitHub documents it ("Evaluate expressions in workflows and
actions"): literals (null, booleans, numbers, 'strings' with '' for a quote), property
access (`a.b`, `a['b']`, `a[0]`, the `a.*` object filter), the operators `!`, `<`, `<=`,
`>`, `>=`, `==`, `!=`, `&&`, `||` and parentheses, GitHub's loose equality (strings compare
case-insensitively; mixed types compare as numbers), its falsy values (false, 0, -0, '',
null, NaN), `&&`/`||` returning an operand, and the functions contains, startsWith,
endsWith, format, join, toJSON, fromJSON and the status functions success, failure,
always, cancelled. hashFiles is not implemented (an error says so).

`python3 actions_expressions.py --self-test` checks the examples of GitHub's page.
"""

import json
import math
import re
import sys

__all__ = ["evaluate", "interpolate", "truthy", "to_text", "ExpressionError", "has_status_function"]


class ExpressionError(Exception):
    pass


TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>0x[0-9a-fA-F]+|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<str>'(?:[^']|'')*')"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\].,*])"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)"
    r")"
)


def tokenize(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError("unexpected %r in expression %r" % (text[pos:pos + 10], text))
        kind = m.lastgroup
        value = m.group(kind)
        # `a.b-c`: a dash after a property name belongs to it; `1 -1` is not a thing here.
        out.append((kind, value))
        pos = m.end()
    out.append(("end", None))
    return out


class Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self, value=None):
        kind, v = self.tokens[self.i]
        if value is not None and v != value:
            raise ExpressionError("expected %r in %r, found %r" % (value, self.text, v))
        self.i += 1
        return kind, v

    def parse(self):
        node = self.or_()
        if self.peek()[0] != "end":
            raise ExpressionError("unexpected %r in %r" % (self.peek()[1], self.text))
        return node

    def or_(self):
        node = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.equality()
        while self.peek() == ("op", "&&"):
            self.take()
            node = ("and", node, self.equality())
        return node

    def equality(self):
        node = self.comparison()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            node = (op, node, self.comparison())
        return node

    def comparison(self):
        node = self.unary()
        while self.peek() in (("op", "<"), ("op", "<="), ("op", ">"), ("op", ">=")):
            op = self.take()[1]
            node = (op, node, self.unary())
        return node

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while True:
            tok = self.peek()
            if tok == ("op", "."):
                self.take()
                kind, v = self.take()
                if kind == "op" and v == "*":
                    node = ("filter", node)
                elif kind == "ident":
                    node = ("index", node, ("lit", v))
                else:
                    raise ExpressionError("expected a property name after '.' in %r" % self.text)
            elif tok == ("op", "["):
                self.take()
                if self.peek() == ("op", "*"):
                    self.take()
                    node = ("filter", node)
                else:
                    node = ("index", node, self.or_())
                self.take("]")
            else:
                return node

    def primary(self):
        kind, v = self.take()
        if kind == "num":
            return ("lit", float(int(v, 16)) if v.startswith("0x") else float(v))
        if kind == "str":
            return ("lit", v[1:-1].replace("''", "'"))
        if kind == "op" and v == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind == "ident":
            if v == "null":
                return ("lit", None)
            if v == "true":
                return ("lit", True)
            if v == "false":
                return ("lit", False)
            if self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.or_())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.or_())
                self.take(")")
                return ("call", v.lower(), args)
            return ("context", v)
        raise ExpressionError("unexpected %r in %r" % (v, self.text))


def truthy(v):
    if v is None or v is False:
        return False
    if isinstance(v, float) and (v == 0 or math.isnan(v)):
        return False
    if isinstance(v, (int,)) and not isinstance(v, bool) and v == 0:
        return False
    if v == "":
        return False
    return True


def to_number(v):
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return 0.0
        try:
            return float(int(s, 16)) if s.lower().startswith("0x") else float(s)
        except ValueError:
            return math.nan
    return math.nan


def to_text(v):
    """How GitHub writes a value into a string (`${{ }}` in a text)."""
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (dict, list)):
        return json.dumps(plain_numbers(v), indent=2)
    return str(v)


def plain_numbers(v):
    """Numbers are doubles here; JSON writes whole ones without a fraction, as GitHub does."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: plain_numbers(e) for k, e in v.items()}
    if isinstance(v, list):
        return [plain_numbers(e) for e in v]
    return v


def loose_equal(a, b):
    if isinstance(a, int) and not isinstance(a, bool):
        a = float(a)
    if isinstance(b, int) and not isinstance(b, bool):
        b = float(b)
    if type(a) is type(b):
        if isinstance(a, str):
            return a.lower() == b.lower()
        if isinstance(a, (dict, list)):
            return a is b
        return a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    x, y = to_number(a), to_number(b)
    return not (math.isnan(x) or math.isnan(y)) and x == y


def compare(op, a, b):
    if isinstance(a, str) and isinstance(b, str):
        x, y = a.lower(), b.lower()
    else:
        x, y = to_number(a), to_number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def index(obj, key):
    if isinstance(obj, dict):
        if isinstance(key, str):
            for k, v in obj.items():
                if k.lower() == key.lower():
                    return v
        return None
    if isinstance(obj, list):
        if isinstance(key, (int, float)) and not isinstance(key, bool) and float(key).is_integer():
            k = int(key)
            return obj[k] if 0 <= k < len(obj) else None
        if isinstance(key, str):  # a filtered list: project the property
            return [index(e, key) for e in obj]
        return None
    return None


def format_(fmt, args):
    out, i = [], 0
    while i < len(fmt):
        c = fmt[i]
        if c == "{" and fmt[i:i + 2] == "{{":
            out.append("{")
            i += 2
        elif c == "}" and fmt[i:i + 2] == "}}":
            out.append("}")
            i += 2
        elif c == "{":
            j = fmt.index("}", i)
            n = int(fmt[i + 1:j])
            if n >= len(args):
                raise ExpressionError("format(): no argument {%d}" % n)
            out.append(to_text(args[n]))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def call(name, args, status):
    if name in ("success", "failure", "always", "cancelled"):
        if args:
            raise ExpressionError("%s() takes no arguments" % name)
        return {
            "success": status == "success",
            "failure": status == "failure",
            "always": True,
            "cancelled": status == "cancelled",
        }[name]
    if name == "contains":
        search, item = args
        if isinstance(search, list):
            return any(loose_equal(e, item) for e in search)
        return to_text(item).lower() in to_text(search).lower()
    if name == "startswith":
        return to_text(args[0]).lower().startswith(to_text(args[1]).lower())
    if name == "endswith":
        return to_text(args[0]).lower().endswith(to_text(args[1]).lower())
    if name == "format":
        return format_(to_text(args[0]), args[1:])
    if name == "join":
        sep = to_text(args[1]) if len(args) > 1 else ","
        if isinstance(args[0], list):
            return sep.join(to_text(e) for e in args[0])
        return to_text(args[0])
    if name == "tojson":
        return json.dumps(plain_numbers(args[0]), indent=2)
    if name == "fromjson":
        return json.loads(to_text(args[0]), parse_int=float)
    raise ExpressionError("the function %s() has no stand-in here" % name)


def evaluate_node(node, ctx, status):
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "context":
        name = node[1]
        for k, v in ctx.items():
            if k.lower() == name.lower():
                return v
        raise ExpressionError("unrecognized named-value: '%s'" % name)
    if kind == "index":
        return index(evaluate_node(node[1], ctx, status), evaluate_node(node[2], ctx, status))
    if kind == "filter":
        obj = evaluate_node(node[1], ctx, status)
        if isinstance(obj, dict):
            return list(obj.values())
        if isinstance(obj, list):
            return obj
        return []
    if kind == "not":
        return not truthy(evaluate_node(node[1], ctx, status))
    if kind == "and":
        a = evaluate_node(node[1], ctx, status)
        return evaluate_node(node[2], ctx, status) if truthy(a) else a
    if kind == "or":
        a = evaluate_node(node[1], ctx, status)
        return a if truthy(a) else evaluate_node(node[2], ctx, status)
    if kind in ("==", "!="):
        eq = loose_equal(evaluate_node(node[1], ctx, status), evaluate_node(node[2], ctx, status))
        return eq if kind == "==" else not eq
    if kind in ("<", "<=", ">", ">="):
        return compare(kind, evaluate_node(node[1], ctx, status), evaluate_node(node[2], ctx, status))
    if kind == "call":
        return call(node[1], [evaluate_node(a, ctx, status) for a in node[2]], status)
    raise ExpressionError("cannot evaluate %r" % (node,))


def evaluate(text, ctx, status="success"):
    """The value of expression `text` (without `${{ }}`) in contexts `ctx`."""
    return evaluate_node(Parser(text).parse(), ctx, status)


def has_status_function(text):
    return re.search(r"\b(success|failure|always|cancelled)\s*\(", text, re.I) is not None


EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(value, ctx, status="success"):
    """A workflow value with its `${{ }}` expressions evaluated. A string that is one
    expression keeps the expression's type; any other string becomes text."""
    if isinstance(value, dict):
        return {k: interpolate(v, ctx, status) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, ctx, status) for v in value]
    if not isinstance(value, str):
        return value
    whole = EMBEDDED.fullmatch(value.strip())
    if whole and value.strip() == value:
        return evaluate(whole.group(1), ctx, status)
    return EMBEDDED.sub(lambda m: to_text(evaluate(m.group(1), ctx, status)), value)


def condition(text, ctx, status):
    """An `if:` condition: with or without `${{ }}`, implicitly `success() && (…)` when it
    calls no status function."""
    if text is None:
        return status == "success"
    if isinstance(text, bool):
        return text and status == "success"
    text = str(text).strip()
    whole = EMBEDDED.fullmatch(text)
    if whole:
        text = whole.group(1)
    elif "${{" in text:
        text = "'" + interpolate(text, ctx, status).replace("'", "''") + "'"
    if not has_status_function(text):
        text = "success() && (%s)" % text
    return truthy(evaluate(text, ctx, status))


def self_test():
    ctx = {
        "github": {
            "event_name": "push",
            "ref": "refs/heads/main",
            "event": {"repository": {"default_branch": "main"}, "commits": [{"id": "a"}, {"id": "b"}]},
        },
        "steps": {"plan": {"outputs": {"mode": "source"}}},
        "inputs": {"mirror": True, "empty": ""},
    }
    cases = [
        ("github.event_name == 'push'", True),
        ("github.event_name == 'PUSH'", True),  # strings compare ignoring case
        ("github.event_name != 'push'", False),
        ("steps.plan.outputs.mode == 'source'", True),
        ("steps.missing.outputs.mode == 'source'", False),
        ("github.ref == format('refs/heads/{0}', github.event.repository.default_branch)", True),
        ("format('{{{0}}}', 'x')", "{x}"),
        ("null == 0", True),
        ("'' == 0", True),
        ("'1' == 1", True),
        ("true == 1", True),
        ("'abc' == 0", False),
        ("1 < 2 && 'b' > 'A'", True),
        ("inputs.empty || 'default'", "default"),
        ("inputs.mirror && 'yes'", "yes"),
        ("!inputs.empty", True),
        ("contains(github.event.commits.*.id, 'b')", True),
        ("contains('Hello world', 'WORLD')", True),
        ("startsWith(github.ref, 'refs/heads/')", True),
        ("join(github.event.commits.*.id, '+')", "a+b"),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2.0),
        ("toJSON(1)", "1"),
        ("(github.event_name == 'pull_request') || (github.event_name == 'push')", True),
        ("0x10 == 16", True),
        ("'it''s' == 'IT''S'", True),
    ]
    failed = 0
    for expr, want in cases:
        got = evaluate(expr, ctx)
        if got != want or type(got) is not type(want):
            print("FAIL %s: got %r, want %r" % (expr, got, want))
            failed += 1
    conditions = [
        ("github.event_name == 'push'", "success", True),
        ("github.event_name == 'push'", "failure", False),
        ("always()", "failure", True),
        ("${{ github.event_name == 'pull_request' }}", "success", False),
        ("failure() && github.event_name == 'push'", "failure", True),
        (None, "success", True),
        (None, "failure", False),
    ]
    for text, status, want in conditions:
        got = condition(text, ctx, status)
        if got != want:
            print("FAIL if: %r (%s): got %r, want %r" % (text, status, got, want))
            failed += 1
    texts = [
        ("ghcr.io/${{ github.event.repository.default_branch }}", "ghcr.io/main"),
        ("${{ inputs.mirror }}", True),
        ("a ${{ inputs.mirror }}", "a true"),
        ("${{ inputs.nothing }}", None),
        ("x${{ inputs.nothing }}y", "xy"),
    ]
    ctx["inputs"]["nothing"] = None
    for text, want in texts:
        got = interpolate(text, ctx)
        if got != want:
            print("FAIL %r: got %r, want %r" % (text, got, want))
            failed += 1
    for bad in ["github.", "1 +", "foo(", "hashFiles('x')", "nosuch.context"]:
        try:
            evaluate(bad, ctx)
        except (ExpressionError, ValueError, IndexError):
            continue
        print("FAIL %r: no error" % bad)
        failed += 1
    total = len(cases) + len(conditions) + len(texts) + 5
    print("%d of %d expression checks passed" % (total - failed, total))
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    print(__doc__)
    sys.exit(2)
