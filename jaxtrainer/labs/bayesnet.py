"""Exact inference in small discrete Bayesian networks, with interventions.

A network is a list of variables, each with named values, a list of parents
and a conditional probability table P(X | parents).  Inference is exact: the
factors are multiplied and summed with one ``numpy.einsum`` over named axes
(each variable is one axis), which is fine for the handful of variables of a
lab and keeps the code obviously correct.

Two ways to "fix" a variable:

* ``evidence={"G": "g2"}`` conditions on an *observation*: the joint is
  restricted to G=g2 and renormalised, so belief flows back to G's causes.
* ``do={"G": "g2"}`` is an *intervention* (graph surgery): G's own table is
  removed and replaced by an indicator of g2, cutting the edges into G, so
  its causes keep their prior distribution.

Example::

    net = BayesNet()
    net.add("S", ["s0", "s1"], [0.2, 0.8])
    net.add("R", ["r0", "r1"], [[0.9, 0.1], [0.2, 0.8]], parents=["S"])
    net.query("S", evidence={"R": "r1"})      # P(S | R=r1)
    net.query("S", do={"R": "r1"})            # P(S | do(R=r1)) == P(S)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import InputError

__all__ = ["Variable", "BayesNet", "Distribution", "TOLERANCE"]

#: How far a table row may sum away from 1 (float64 rounding of decimal tables).
TOLERANCE = 1e-9

# np.einsum's sublist form labels axes with integers below 52.
_MAX_VARIABLES = 52


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


@dataclass(frozen=True, eq=False)
class Variable:
    """One node: its values, its parents and P(name | parents).

    ``table`` has one axis per parent (in ``parents`` order, sized by that
    parent's number of values) followed by one axis for this variable, so
    ``table[i, j, :]`` is the distribution of the variable for the i-th value
    of the first parent and the j-th of the second.  A root's table is 1-D.
    The shape and the rows are checked when the variable joins a `BayesNet`,
    because only then are the parents' values known.
    """

    name: str
    values: tuple[str, ...]
    parents: tuple[str, ...]
    table: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"variable name must be a non-empty string, got {self.name!r}")
        values = tuple(self.values) if not isinstance(self.values, str) else (self.values,)
        if not values:
            raise InputError(f"variable {self.name!r} needs at least one value")
        for v in values:
            if not isinstance(v, str) or not v:
                raise InputError(f"values of {self.name!r} must be non-empty strings, got {v!r}")
        if len(set(values)) != len(values):
            raise InputError(f"variable {self.name!r} has duplicate values: {_names(values)}")
        parents = (self.parents,) if isinstance(self.parents, str) else tuple(self.parents)
        if len(set(parents)) != len(parents):
            raise InputError(f"variable {self.name!r} lists a parent twice: {_names(parents)}")
        try:
            table = np.array(self.table, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"table of {self.name!r} is not a numeric array: {exc}") from None
        table.setflags(write=False)  # shared by every query: keep it immutable
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "table", table)

    def index(self, value: str, role: str = "query") -> int:
        """Position of ``value``; a clear error lists the allowed values."""
        try:
            return self.values.index(value)
        except ValueError:
            raise InputError(
                f"unknown value {value!r} for {self.name} in {role}; allowed values: {_names(self.values)}"
            ) from None


@dataclass(frozen=True, eq=False)
class Distribution:
    """Result of a query: P(targets | evidence, do(...)) with value names.

    ``probs`` has one axis per target, in ``targets`` order.  Index it with
    value names: ``d["g1"]``, or ``d["g1", "r0"]`` for two targets.
    """

    targets: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    probs: np.ndarray
    evidence: Mapping[str, str]
    do: Mapping[str, str]

    @property
    def label(self) -> str:
        """E.g. ``P(R | G=g2)`` or ``P(G | do(L=l1))``."""
        given = [f"{k}={v}" for k, v in self.evidence.items()]
        given += [f"do({k}={v})" for k, v in self.do.items()]
        head = ", ".join(self.targets)
        return f"P({head} | {', '.join(given)})" if given else f"P({head})"

    def __getitem__(self, key: str | tuple[str, ...]) -> float:
        key = (key,) if isinstance(key, str) else tuple(key)
        if len(key) != len(self.targets):
            raise KeyError(f"{self.label} needs {len(self.targets)} value name(s), got {key!r}")
        idx = []
        for name, vals, v in zip(self.targets, self.values, key):
            if v not in vals:
                raise KeyError(f"unknown value {v!r} for {name}; allowed values: {_names(vals)}")
            idx.append(vals.index(v))
        return float(self.probs[tuple(idx)])

    def as_dict(self) -> dict:
        """``{value: p}`` for one target, ``{(v1, v2, ...): p}`` for several."""
        out = {}
        for combo in product(*self.values):
            out[combo[0] if len(combo) == 1 else combo] = self[combo]
        return out

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.probs, dtype=dtype)

    def __repr__(self) -> str:
        items = ", ".join(
            f"{','.join(k) if isinstance(k, tuple) else k}: {p:.5f}" for k, p in self.as_dict().items()
        )
        return f"{self.label} = {{{items}}}"


class BayesNet:
    """A discrete Bayesian network with exact queries, evidence and do().

    Build it from a list of `Variable` (any order; parents are resolved and
    cycles rejected over the whole list) or incrementally with `add` (parents
    must already be present, which rules out cycles).  Axis order of
    `joint` is the order the variables were given in.
    """

    def __init__(self, variables: Iterable[Variable] = ()) -> None:
        self._vars: dict[str, Variable] = {}
        variables = list(variables)
        for var in variables:
            if not isinstance(var, Variable):
                raise TypeError(f"expected Variable, got {type(var).__name__}")
            if var.name in self._vars:
                raise InputError(f"variable {var.name!r} is defined twice")
            self._vars[var.name] = var
        for var in variables:
            for p in var.parents:
                if p not in self._vars:
                    raise InputError(
                        f"unknown parent {p!r} of {var.name!r}; variables are: {_names(self._vars)}"
                    )
        self._check_acyclic()
        self._check_size()
        for var in variables:
            self._check_table(var)

    # -- construction ---------------------------------------------------

    def add(
        self,
        name: str,
        values: Sequence[str],
        table,
        parents: Sequence[str] = (),
    ) -> BayesNet:
        """Add a variable whose parents are already in the net; returns self."""
        var = Variable(name, tuple(values), tuple(parents), table)
        if name in self._vars:
            raise InputError(f"variable {name!r} is defined twice")
        if name in var.parents:
            raise InputError(f"variable {name!r} lists itself as a parent (cycle {name} -> {name})")
        for p in var.parents:
            if p not in self._vars:
                known = _names(self._vars) or "none yet"
                raise InputError(
                    f"unknown parent {p!r} of {name!r}; variables are: {known} "
                    f"(add parents before their children)"
                )
        self._check_table(var)
        self._vars[name] = var
        self._check_size()
        return self

    def _check_size(self) -> None:
        if len(self._vars) > _MAX_VARIABLES:
            raise InputError(f"at most {_MAX_VARIABLES} variables are supported (einsum axes)")

    def _check_acyclic(self) -> None:
        """Depth-first search; a back edge is a cycle, reported as a path."""
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            path.append(name)
            for p in self._vars[name].parents:
                if state.get(p) == 1:
                    cycle = path[path.index(p) :] + [p]
                    # path follows child -> parent; print it in edge direction
                    raise InputError(f"the graph has a cycle: {' -> '.join(reversed(cycle))}")
                if p not in state:
                    visit(p, path)
            path.pop()
            state[name] = 2

        for name in self._vars:
            if name not in state:
                visit(name, [])

    def _check_table(self, var: Variable) -> None:
        """Shape = parents' value counts then the child's; rows >= 0, sum 1."""
        parents = [self._vars[p] for p in var.parents]
        expected = tuple(len(p.values) for p in parents) + (len(var.values),)
        t = var.table
        desc = f"P({var.name} | {_names(var.parents)})" if parents else f"P({var.name})"
        if t.shape != expected:
            axes = _names(
                [f"{p.name}: {len(p.values)}" for p in parents] + [f"{var.name}: {len(var.values)}"]
            )
            raise InputError(f"{desc}: table has shape {t.shape}, expected {expected} ({axes})")
        for idx in product(*(range(n) for n in expected[:-1])):
            row = t[idx]
            cond = _names(f"{p.name}={p.values[i]}" for p, i in zip(parents, idx))
            where = f"P({var.name} | {cond})" if parents else f"P({var.name})"
            if not np.all(np.isfinite(row)):
                raise InputError(f"{where} has a non-finite entry: {row.tolist()}")
            for value, p in zip(var.values, row):
                if p < 0:
                    raise InputError(f"{where} has a negative entry {p:g} for {var.name}={value}")
            total = float(row.sum())
            if abs(total - 1.0) > TOLERANCE:
                raise InputError(f"{where} sums to {total:.12g}, must sum to 1 (±{TOLERANCE:g})")

    # -- inspection -----------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The variables' names, in the order they were added."""
        return tuple(self._vars)

    @property
    def variables(self) -> tuple[Variable, ...]:
        """The variables, in the order they were added."""
        return tuple(self._vars.values())

    def __getitem__(self, name: str) -> Variable:
        return self._var(name, "network")

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __len__(self) -> int:
        return len(self._vars)

    def _var(self, name: str, role: str) -> Variable:
        try:
            return self._vars[name]
        except (KeyError, TypeError):
            raise InputError(
                f"unknown variable {name!r} in {role}; variables are: {_names(self._vars)}"
            ) from None

    # -- inference ------------------------------------------------------

    def _axis(self, name: str) -> int:
        return list(self._vars).index(name)

    def _indicator(self, var: Variable, value: str, role: str) -> np.ndarray:
        one_hot = np.zeros(len(var.values))
        one_hot[var.index(value, role)] = 1.0
        return one_hot

    def _contract(self, out: Sequence[str], evidence: Mapping[str, str], do: Mapping[str, str]) -> np.ndarray:
        """Sum over all other axes of prod(factors); unnormalised.

        Factors: each variable's table, except that an intervened variable's
        table is replaced by an indicator of its forced value (graph
        surgery), and each piece of evidence adds an indicator of its value.
        """
        args: list = []
        for var in self._vars.values():
            if var.name in do:
                args += [self._indicator(var, do[var.name], "do"), [self._axis(var.name)]]
            else:
                args += [var.table, [self._axis(p) for p in var.parents] + [self._axis(var.name)]]
        for name, value in evidence.items():
            var = self._var(name, "evidence")
            args += [self._indicator(var, value, "evidence"), [self._axis(name)]]
        args.append([self._axis(n) for n in out])
        return np.einsum(*args, optimize=True)

    def joint(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """The full joint table and its axis names (the variables' order)."""
        if not self._vars:
            raise InputError("the network has no variables")
        return self._contract(self.names, {}, {}), self.names

    def query(
        self,
        targets: str | Sequence[str],
        evidence: Mapping[str, str] | None = None,
        do: Mapping[str, str] | None = None,
    ) -> Distribution:
        """P(targets | evidence) in the network mutilated by ``do``.

        ``evidence`` and ``do`` map variable names to value names.  Raises
        ValueError for unknown variables or values, and when the evidence has
        probability 0 (the conditional is then undefined).
        """
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        evidence = dict(evidence or {})
        do = dict(do or {})
        if not targets:
            raise InputError("query needs at least one target variable")
        if len(set(targets)) != len(targets):
            raise InputError(f"target listed twice: {_names(targets)}")
        for role, names in (("targets", targets), ("evidence", evidence), ("do", do)):
            for name in names:
                self._var(name, role)
        for role, fixed in (("evidence", evidence), ("do", do)):
            for name, value in fixed.items():
                self._vars[name].index(value, role)

        unnorm = self._contract(targets, evidence, do)
        z = float(unnorm.sum())
        if not z > 0.0:
            given = _names(f"{k}={v}" for k, v in evidence.items())
            under = f" under do({_names(f'{k}={v}' for k, v in do.items())})" if do else ""
            raise InputError(f"evidence {given} has probability 0{under}; cannot condition on it")
        probs = unnorm / z
        probs.setflags(write=False)
        return Distribution(
            targets=targets,
            values=tuple(self._vars[t].values for t in targets),
            probs=probs,
            evidence=evidence,
            do=do,
        )
