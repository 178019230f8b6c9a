"""What PromQL expressions select, and what a Prometheus scrape exports, for checking one
against the other (the dashboards and alert rules against the real /metrics endpoints)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# Aggregations and keywords: identifiers that never name a metric. Functions are known by
# the `(` after them; aggregations may be followed by `by (...)` first.
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2", "start", "end"}
# Labels every scraped series gets from Prometheus (the target's) and a histogram's buckets.
TARGET_LABELS = {"job", "instance"}

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)\b)
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<matchers>\{[^}]*\})
  | (?P<paren>[()])
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>,=])
    """,
    re.VERBOSE,
)
MATCHER = re.compile(r"""([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'[^']*')""")


@dataclass(frozen=True)
class Selector:
    """A metric name in an expression, with the labels its matchers name."""

    metric: str
    labels: frozenset[str]


@dataclass
class Parsed:
    """An expression's selectors, and the labels it groups or matches on."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(expr):
        found = TOKEN.match(expr, pos)
        if found is None:
            raise ValueError(f"can't read PromQL at {expr[pos : pos + 20]!r} in {expr!r}")
        pos = found.end()
        kind = found.lastgroup or ""
        if kind != "space":
            yield kind, found.group()


def parse(expr: str) -> Parsed:
    """The metric selectors and grouping labels of a PromQL expression."""
    tokens = list(_tokens(expr))
    parsed = Parsed()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in GROUPING:
            # by (a, b): the labels up to the closing paren.
            if following[1] != "(":
                raise ValueError(f"{text} without a label list in {expr!r}")
            j = i + 2
            while tokens[j][1] != ")":
                if tokens[j][0] == "ident":
                    parsed.grouping.add(tokens[j][1])
                j += 1
            i = j + 1
            continue
        if kind == "ident" and following[1] != "(" and text not in AGGREGATIONS | KEYWORDS:
            labels: set[str] = set()
            if following[0] == "matchers":
                labels = {name for name, _, _ in MATCHER.findall(following[1])}
                i += 1
            parsed.selectors.append(Selector(text, frozenset(labels)))
        elif kind == "matchers":
            raise ValueError(f"a selector without a metric name in {expr!r}")
        i += 1
    return parsed


@dataclass
class Scrape:
    """What a set of Prometheus text-format scrapes export: series names and their labels."""

    # every series name a selector may use (samples seen, and those their TYPE implies)
    names: set[str] = field(default_factory=set)
    # series name -> every label name seen on its samples
    labels: dict[str, set[str]] = field(default_factory=dict)

    def add(self, text: str) -> None:
        """Read one scrape in the text exposition format."""
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(maxsplit=3)
                self.names |= {family + suffix for suffix in SUFFIXES.get(kind, ("",))}
            elif line and not line.startswith("#"):
                name, _, rest = line.partition("{")
                if rest:
                    labels = {n for n, _, _ in MATCHER.findall(rest.rpartition("}")[0])}
                else:
                    name, labels = line.split()[0], set()
                self.names.add(name)
                self.labels.setdefault(name, set()).update(labels)


SUFFIXES = {
    "counter": ("", "_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "untyped": ("",),
}
