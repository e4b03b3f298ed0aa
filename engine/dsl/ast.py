"""Sky's syntax tree: plain dataclasses, each carrying the 1-based line and column it starts at,
so the compiler can point its errors into the query text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    line: int = field(default=0, kw_only=True, compare=False)
    column: int = field(default=0, kw_only=True, compare=False)


# ---- expressions ---------------------------------------------------------------------------

@dataclass
class Number(Node):
    text: str


@dataclass
class Quantity(Node):
    value: "Number | Param"
    unit: str


@dataclass
class String(Node):
    value: str


@dataclass
class DateTime(Node):
    text: str


@dataclass
class Boolean(Node):
    value: bool


@dataclass
class Param(Node):
    name: str


@dataclass
class ColumnRef(Node):
    name: str


@dataclass
class Field(Node):
    """``struct_column.field``."""
    struct: str
    name: str


@dataclass
class Call(Node):
    name: str
    args: list


@dataclass
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass
class Binary(Node):
    op: str  # + - * / % and or, or a comparison
    left: Node
    right: Node


@dataclass
class Between(Node):
    operand: Node
    low: Node
    high: Node
    negated: bool = False


@dataclass
class IsNull(Node):
    operand: Node
    negated: bool = False


@dataclass
class InList(Node):
    operand: Node
    items: list
    negated: bool = False


@dataclass
class Like(Node):
    operand: Node
    pattern: str


# ---- clauses ---------------------------------------------------------------------------------

@dataclass
class Source(Node):
    table: str
    alias: str | None = None


@dataclass
class Near(Node):
    """``near "name" within r`` or ``near (ra, dec) within r``: a cone search."""
    radius: Quantity
    name: "String | Param | None" = None
    ra: Node | None = None
    dec: Node | None = None


@dataclass
class Instant(Node):
    kind: str  # datetime | year | mjd | text | param
    value: str


@dataclass
class During(Node):
    start: Instant
    end: Instant | None = None


@dataclass
class Where(Node):
    condition: Node


@dataclass
class Stage(Node):
    """A pipeline stage that calls the function library: ``correct doppler``, ``extract sources``,
    ``spectrogram``, ``search drift``, ``classify``."""
    name: str
    args: dict = field(default_factory=dict)


@dataclass
class Match(Node):
    """``match TABLE within r [nearest|all]``: a positional cross-match."""
    table: str
    radius: Quantity
    alias: str | None = None
    mode: str = "nearest"


@dataclass
class SelectItem(Node):
    expr: Node
    alias: str | None = None
    unit: str | None = None


@dataclass
class OrderItem(Node):
    expr: Node
    descending: bool = False


@dataclass
class Into(Node):
    table: str
    mode: str = "create"  # create | replace | append


@dataclass
class Query(Node):
    source: Source
    steps: list = field(default_factory=list)
    select: list | None = None
    group: list | None = None
    having: Node | None = None
    order: list | None = None
    limit: "Number | Param | None" = None
    into: Into | None = None
    defaults: dict = field(default_factory=dict)  # param $name = value
