"""Lab A: exact inference with interventions in the student network.

Variables (axes in this order): S (prepares), D (difficulties), R (passes the
interview), G (grade), L (honour list).  Graph: S -> R, S -> G, D -> G, G -> L.

The sixteen queries use the lab's shorthand: a value name stands for
"that variable takes that value" (value names are unique in this network),
so ``P(G | r1, s0)`` is P(G | R=r1, S=s0) and ``do(g2)`` is do(G=g2).

Run it with ``jaxtrainer lab bayesnet``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .bayesnet import BayesNet, Distribution


def lab_network() -> BayesNet:
    """The lab's network with its tables (rows = parent values)."""
    net = BayesNet()
    net.add("S", ["s0", "s1"], [0.2, 0.8])
    net.add("D", ["d0", "d1"], [0.9, 0.1])
    net.add("R", ["r0", "r1"], [[0.9, 0.1], [0.2, 0.8]], parents=["S"])
    grades = [[[0.5, 0.3, 0.2], [0.9, 0.08, 0.02]], [[0.1, 0.2, 0.7], [0.3, 0.4, 0.3]]]  # [s][d]
    net.add("G", ["g0", "g1", "g2"], grades, parents=["S", "D"])
    net.add("L", ["l0", "l1"], [[0.9, 0.1], [0.6, 0.4], [0.01, 0.99]], parents=["G"])
    return net


@dataclass(frozen=True)
class LabQuery:
    """One lab query: its label in the lab's notation and what it asks."""

    label: str
    target: str
    evidence: Mapping[str, str] = field(default_factory=dict)
    do: Mapping[str, str] = field(default_factory=dict)
    value: str | None = None  # set for a single probability such as P(G=g1 | l1)


@dataclass(frozen=True)
class LabResult:
    """A query and its answer; ``dist`` is always the full distribution."""

    query: LabQuery
    dist: Distribution

    @property
    def label(self) -> str:
        """The query as written, e.g. P(G | do(I=high))."""
        return self.query.label

    @property
    def probs(self) -> dict[str, float]:
        """``{value name: probability}``, only the asked value if there is one."""
        d = self.dist.as_dict()
        return {self.query.value: d[self.query.value]} if self.query.value else d


QUERIES: tuple[LabQuery, ...] = (
    LabQuery("P(G)", "G"),
    LabQuery("P(G | r1)", "G", {"R": "r1"}),
    LabQuery("P(G | r0)", "G", {"R": "r0"}),
    LabQuery("P(G | r1, s0)", "G", {"R": "r1", "S": "s0"}),
    LabQuery("P(G | r0, s0)", "G", {"R": "r0", "S": "s0"}),
    LabQuery("P(R | d1)", "R", {"D": "d1"}),
    LabQuery("P(R | d0)", "R", {"D": "d0"}),
    LabQuery("P(R | d1, g2)", "R", {"D": "d1", "G": "g2"}),
    LabQuery("P(R | d0, g2)", "R", {"D": "d0", "G": "g2"}),
    LabQuery("P(R | d1, l1)", "R", {"D": "d1", "L": "l1"}),
    LabQuery("P(R | d0, l1)", "R", {"D": "d0", "L": "l1"}),
    LabQuery("P(R | do(g2))", "R", do={"G": "g2"}),
    LabQuery("P(R | g2)", "R", {"G": "g2"}),
    LabQuery("P(R)", "R"),
    LabQuery("P(G | do(l1))", "G", do={"L": "l1"}),
    LabQuery("P(G=g1 | l1)", "G", {"L": "l1"}, value="g1"),
)

#: Pairs the lab contrasts: (conditioning query, intervention query, comment).
CONTRASTS: tuple[tuple[LabQuery, LabQuery, str], ...] = (
    (
        LabQuery("P(R | g2)", "R", {"G": "g2"}),
        LabQuery("P(R | do(g2))", "R", do={"G": "g2"}),
        "seeing g2 makes S=s1 likelier, hence r1; forcing g2 leaves S, so R, at its prior P(R)",
    ),
    (
        LabQuery("P(G | l1)", "G", {"L": "l1"}),
        LabQuery("P(G | do(l1))", "G", do={"L": "l1"}),
        "seeing l1 makes a high grade likelier; forcing l1 leaves G at its prior P(G)",
    ),
)

EXPLANATION = (
    "Conditioning on a child (G, L) updates belief about its causes; "
    "intervening with do() cuts the edges into the variable, so its causes keep their prior."
)


def _ask(net: BayesNet, q: LabQuery) -> LabResult:
    return LabResult(q, net.query(q.target, evidence=q.evidence, do=q.do))


def run_queries(net: BayesNet | None = None) -> list[LabResult]:
    """Answer the sixteen lab queries, in the lab's order."""
    net = lab_network() if net is None else net
    return [_ask(net, q) for q in QUERIES]


def _fmt(probs: Mapping[str, float], decimals: int) -> str:
    return "  ".join(f"{v}={p:.{decimals}f}" for v, p in probs.items())


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain-text table with aligned columns (no '|': the labels contain it)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def format_report(results: Sequence[LabResult], net: BayesNet | None = None, decimals: int = 5) -> str:
    """The sixteen answers, then conditioning vs intervention side by side (`net`, by default
    `lab_network`, answers the contrasts' queries that are not among `results`: P(G | l1))."""
    lines = ["Lab A: exact inference in the student network (S -> R, S -> G, D -> G, G -> L)", ""]
    rows = [[f"{i:>2}", r.label, _fmt(r.probs, decimals)] for i, r in enumerate(results, 1)]
    lines += _table(["#", "query", "distribution"], rows)

    by_label = {r.label: r for r in results}
    net = lab_network() if net is None else net
    answer = lambda q: f"{q.label}: {_fmt((by_label.get(q.label) or _ask(net, q)).probs, decimals)}"
    rows = [[answer(seen), answer(forced)] for seen, forced, _comment in CONTRASTS]
    lines += ["", "Conditioning vs intervention", ""]
    lines += _table(["observed (conditioning)", "intervened (do)"], rows)
    lines += ["", EXPLANATION]
    lines += [f"  - {seen.label} vs {forced.label}: {comment}" for seen, forced, comment in CONTRASTS]
    return "\n".join(lines)


def run_from_args(args) -> None:
    """Print the report."""
    net = lab_network()
    print(format_report(run_queries(net), net, decimals=args.decimals))
