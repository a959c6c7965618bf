"""Exact inference in small discrete Bayesian networks, with interventions (numpy only; docs/labs.md).

One ``numpy.einsum`` over named axes, one per variable, multiplies and sums the factors.
``evidence={"G": "g2"}`` conditions on an observation; ``do={"G": "g2"}`` replaces G's table by an
indicator of g2 (graph surgery), cutting the edges into G, so G's causes keep their prior.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from itertools import product
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import InputError

#: How far a table row may sum away from 1 (float64 rounding of decimal tables).
TOLERANCE = 1e-9

# np.einsum's sublist form labels axes with integers below 52.
_MAX_VARIABLES = 52


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


def _prob(head: str, given: str) -> str:
    return f"P({head} | {given})" if given else f"P({head})"


@dataclass(frozen=True, eq=False)
class Variable:
    """One node: its values, its parents and P(name | parents), a table with one axis per parent (in
    `parents` order, sized by its values) then one for this variable; checked when it joins a net."""

    name: str
    values: tuple[str, ...]
    parents: tuple[str, ...]
    table: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"variable name must be a non-empty string, got {self.name!r}")
        values = (self.values,) if isinstance(self.values, str) else tuple(self.values)
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
    """Result of a query: P(targets | evidence, do(...)), ``probs`` with one axis per target, indexed
    by value names: ``d["g1"]``, or ``d["g1", "r0"]`` for two targets."""

    targets: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    probs: np.ndarray
    evidence: Mapping[str, str]
    do: Mapping[str, str]

    @property
    def label(self) -> str:
        """E.g. ``P(R | G=g2)`` or ``P(G | do(L=l1))``."""
        given = [f"{k}={v}" for k, v in self.evidence.items()] + [f"do({k}={v})" for k, v in self.do.items()]
        return _prob(", ".join(self.targets), ", ".join(given))

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
        combos = product(*self.values)  # row-major, as the flattened probabilities
        return {c[0] if len(c) == 1 else c: p for c, p in zip(combos, self.probs.ravel().tolist())}

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.probs, dtype=dtype)

    def __repr__(self) -> str:
        items = ", ".join(
            f"{','.join(k) if isinstance(k, tuple) else k}: {p:.5f}" for k, p in self.as_dict().items()
        )
        return f"{self.label} = {{{items}}}"


class BayesNet:
    """A discrete Bayesian network with exact queries, evidence and do(): from `Variable`s in any
    order, or built with `add` (parents first); `joint`'s axes follow the variables' order."""

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
        try:  # the cycle comes back in edge direction (parent -> child)
            tuple(graphlib.TopologicalSorter({v.name: v.parents for v in variables}).static_order())
        except graphlib.CycleError as exc:
            raise InputError(f"the graph has a cycle: {' -> '.join(exc.args[1])}") from None
        self._check_size()
        for var in variables:
            self._check_table(var)

    def add(self, name: str, values: Sequence[str], table, parents: Sequence[str] = ()) -> BayesNet:
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

    def _check_table(self, var: Variable) -> None:
        """Shape: the parents' value counts then the child's; every row finite, >= 0, summing to 1."""
        parents = [self._vars[p] for p in var.parents]
        expected = tuple(len(p.values) for p in parents) + (len(var.values),)
        if var.table.shape != expected:
            axes = _names(f"{v.name}: {len(v.values)}" for v in [*parents, var])
            raise InputError(
                f"{_prob(var.name, _names(var.parents))}: table has shape {var.table.shape}, "
                f"expected {expected} ({axes})"
            )
        for idx in np.ndindex(expected[:-1]):
            row = var.table[idx]
            where = _prob(var.name, _names(f"{p.name}={p.values[i]}" for p, i in zip(parents, idx)))
            if not np.all(np.isfinite(row)):
                raise InputError(f"{where} has a non-finite entry: {row.tolist()}")
            for value, p in zip(var.values, row):
                if p < 0:
                    raise InputError(f"{where} has a negative entry {p:g} for {var.name}={value}")
            total = float(row.sum())
            if abs(total - 1.0) > TOLERANCE:
                raise InputError(f"{where} sums to {total:.12g}, must sum to 1 (±{TOLERANCE:g})")

    @property
    def names(self) -> tuple[str, ...]:
        """The variables' names, in the order they were added."""
        return tuple(self._vars)

    def _var(self, name: str, role: str) -> Variable:
        try:
            return self._vars[name]
        except (KeyError, TypeError):
            raise InputError(
                f"unknown variable {name!r} in {role}; variables are: {_names(self._vars)}"
            ) from None

    def _contract(self, out: Sequence[str], evidence: Mapping[str, str], do: Mapping[str, str]) -> np.ndarray:
        """The product of the factors summed over all axes but `out`'s, unnormalised: each table, an
        intervened variable's replaced by an indicator of its value, and an indicator per evidence."""
        axis = {name: i for i, name in enumerate(self._vars)}
        one_hot = lambda var, value, role: np.eye(len(var.values))[var.index(value, role)]
        args: list = []
        for var in self._vars.values():
            if var.name in do:
                args += [one_hot(var, do[var.name], "do"), [axis[var.name]]]
            else:
                args += [var.table, [axis[p] for p in (*var.parents, var.name)]]
        for name, value in evidence.items():
            args += [one_hot(self._vars[name], value, "evidence"), [axis[name]]]
        return np.einsum(*args, [axis[n] for n in out], optimize=True)

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
        """P(targets | evidence) in the network mutilated by ``do`` (both map variables to values);
        unknown names, and evidence of probability 0, are refused."""
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
        unnorm = self._contract(targets, evidence, do)  # refuses unknown values
        z = float(unnorm.sum())
        if not z > 0.0:
            given = _names(f"{k}={v}" for k, v in evidence.items())
            under = f" under do({_names(f'{k}={v}' for k, v in do.items())})" if do else ""
            raise InputError(f"evidence {given} has probability 0{under}; cannot condition on it")
        probs = unnorm / z
        probs.setflags(write=False)
        values = tuple(self._vars[t].values for t in targets)
        return Distribution(targets, values, probs, evidence, do)
