"""Tests for jaxtrainer.labs.bayesnet and Lab A's sixteen queries.

Every lab answer is checked against a brute-force sum over the 48 joint
entries written here with plain loops (independent of the module's einsum).
"""

import itertools
import re
import subprocess
import sys

import numpy as np
import pytest

from jaxtrainer.cli import main
from jaxtrainer.labs.bayesnet import BayesNet, Distribution, Variable
from jaxtrainer.labs.student_network import QUERIES, format_report, lab_network, run_queries

# ---------------------------------------------------------------------------
# Brute force over the lab network, written independently of the module.

VALUES = {
    "S": ["s0", "s1"],
    "D": ["d0", "d1"],
    "R": ["r0", "r1"],
    "G": ["g0", "g1", "g2"],
    "L": ["l0", "l1"],
}
ORDER = ["S", "D", "R", "G", "L"]
P_S = [0.2, 0.8]
P_D = [0.9, 0.1]
P_R = [[0.9, 0.1], [0.2, 0.8]]  # [s][r]
P_G = [[[0.5, 0.3, 0.2], [0.9, 0.08, 0.02]], [[0.1, 0.2, 0.7], [0.3, 0.4, 0.3]]]  # [s][d][g]
P_L = [[0.9, 0.1], [0.6, 0.4], [0.01, 0.99]]  # [g][l]


def brute_force(target, evidence=None, do=None):
    """P(target | evidence) with each do-variable's factor an indicator."""
    evidence, do = evidence or {}, do or {}
    idx = lambda var, value: VALUES[var].index(value)
    out = np.zeros(len(VALUES[target]))
    count = 0
    for s, d, r, g, l in itertools.product(range(2), range(2), range(2), range(3), range(2)):
        count += 1
        a = dict(S=s, D=d, R=r, G=g, L=l)
        factors = {"S": P_S[s], "D": P_D[d], "R": P_R[s][r], "G": P_G[s][d][g], "L": P_L[g][l]}
        for var, value in do.items():
            factors[var] = 1.0 if a[var] == idx(var, value) else 0.0
        if any(a[var] != idx(var, value) for var, value in evidence.items()):
            continue
        p = 1.0
        for f in factors.values():
            p *= f
        out[a[target]] += p
    assert count == 48
    return out / out.sum()


# The lab's sixteen queries, spelled out independently of QUERIES:
# label -> (target, evidence, do, single value or None)
EXPECTED_QUERIES = {
    "P(G)": ("G", {}, {}, None),
    "P(G | r1)": ("G", {"R": "r1"}, {}, None),
    "P(G | r0)": ("G", {"R": "r0"}, {}, None),
    "P(G | r1, s0)": ("G", {"R": "r1", "S": "s0"}, {}, None),
    "P(G | r0, s0)": ("G", {"R": "r0", "S": "s0"}, {}, None),
    "P(R | d1)": ("R", {"D": "d1"}, {}, None),
    "P(R | d0)": ("R", {"D": "d0"}, {}, None),
    "P(R | d1, g2)": ("R", {"D": "d1", "G": "g2"}, {}, None),
    "P(R | d0, g2)": ("R", {"D": "d0", "G": "g2"}, {}, None),
    "P(R | d1, l1)": ("R", {"D": "d1", "L": "l1"}, {}, None),
    "P(R | d0, l1)": ("R", {"D": "d0", "L": "l1"}, {}, None),
    "P(R | do(g2))": ("R", {}, {"G": "g2"}, None),
    "P(R | g2)": ("R", {"G": "g2"}, {}, None),
    "P(R)": ("R", {}, {}, None),
    "P(G | do(l1))": ("G", {}, {"L": "l1"}, None),
    "P(G=g1 | l1)": ("G", {"L": "l1"}, {}, "g1"),
}


@pytest.fixture(scope="module")
def net():
    return lab_network()


@pytest.fixture(scope="module")
def results(net):
    return run_queries(net)


# ---------------------------------------------------------------------------
# The lab's answers


def test_known_values(net):
    assert np.allclose(net.query("G").probs, [0.204, 0.2316, 0.5644], atol=1e-12)
    assert np.allclose(net.query("R", do={"G": "g2"}).probs, [0.34, 0.66], atol=1e-12)
    assert np.allclose(net.query("R", evidence={"G": "g2"}).probs, [0.24515, 0.75485], atol=5e-6)


def test_sixteen_queries_in_order(results):
    assert len(results) == 16
    assert [r.label for r in results] == list(EXPECTED_QUERIES)


@pytest.mark.parametrize("label", list(EXPECTED_QUERIES))
def test_query_matches_brute_force(results, label):
    target, evidence, do, value = EXPECTED_QUERIES[label]
    result = {r.label: r for r in results}[label]
    expected = brute_force(target, evidence, do)
    np.testing.assert_allclose(result.dist.probs, expected, rtol=0, atol=1e-12)
    assert result.dist.targets == (target,)
    names = VALUES[target]
    if value is None:
        assert list(result.probs) == names
    else:
        assert result.probs == pytest.approx({value: expected[names.index(value)]}, abs=1e-12)


def test_joint_matches_brute_force(net):
    joint, names = net.joint()
    assert names == tuple(ORDER)
    assert joint.shape == (2, 2, 2, 3, 2)
    assert joint.sum() == pytest.approx(1.0, abs=1e-12)
    for s, d, r, g, l in itertools.product(range(2), range(2), range(2), range(3), range(2)):
        p = P_S[s] * P_D[d] * P_R[s][r] * P_G[s][d][g] * P_L[g][l]
        assert joint[s, d, r, g, l] == pytest.approx(p, abs=1e-15)


def test_multi_target_and_intervention_brute_force(net):
    # P(S, R | do(G=g2)): do cuts G from S, so this is the prior of (S, R).
    dist = net.query(["S", "R"], do={"G": "g2"})
    assert dist.probs.shape == (2, 2)
    expected = np.array([[P_S[s] * P_R[s][r] for r in range(2)] for s in range(2)])
    np.testing.assert_allclose(dist.probs, expected, atol=1e-12)
    assert dist["s1", "r0"] == pytest.approx(0.8 * 0.2)
    # do() on L with evidence on R: brute force with L's factor an indicator.
    got = net.query("G", evidence={"R": "r1"}, do={"L": "l0"}).probs
    np.testing.assert_allclose(got, brute_force("G", {"R": "r1"}, {"L": "l0"}), atol=1e-12)
    got = net.query("S", evidence={"L": "l1"}, do={"G": "g0"}).probs
    np.testing.assert_allclose(got, brute_force("S", {"L": "l1"}, {"G": "g0"}), atol=1e-12)


def test_do_on_root_equals_conditioning(net):
    for target in ("R", "G", "L"):
        for value in ("s0", "s1"):
            a = net.query(target, do={"S": value}).probs
            b = net.query(target, evidence={"S": value}).probs
            np.testing.assert_allclose(a, b, atol=1e-12)


def test_distribution_api(net):
    dist = net.query("R", evidence={"G": "g2"})
    assert isinstance(dist, Distribution)
    assert dist.label == "P(R | G=g2)"
    assert net.query("G", do={"L": "l1"}).label == "P(G | do(L=l1))"
    assert dist["r1"] == pytest.approx(0.75485, abs=5e-6)
    assert set(dist.as_dict()) == {"r0", "r1"}
    assert np.asarray(dist).shape == (2,)
    assert "P(R | G=g2)" in repr(dist)
    with pytest.raises(KeyError, match="allowed values: r0, r1"):
        dist["r2"]


# ---------------------------------------------------------------------------
# Validation of tables and structure


def test_row_not_summing_to_one():
    net = BayesNet().add("S", ["s0", "s1"], [0.2, 0.8]).add("D", ["d0", "d1"], [0.9, 0.1])
    bad = [[[0.5, 0.3, 0.2], [0.9, 0.08, 0.02]], [[0.1, 0.2, 0.6], [0.3, 0.4, 0.3]]]
    with pytest.raises(ValueError) as err:
        net.add("G", ["g0", "g1", "g2"], bad, parents=["S", "D"])
    assert str(err.value) == "P(G | S=s1, D=d0) sums to 0.9, must sum to 1 (±1e-09)"
    with pytest.raises(ValueError, match=re.escape("P(S) sums to 1.1, must sum to 1")):
        BayesNet().add("S", ["s0", "s1"], [0.3, 0.8])
    # within the tolerance is accepted, just outside is not
    BayesNet().add("S", ["s0", "s1"], [0.2, 0.8 + 5e-10])
    with pytest.raises(ValueError, match=re.escape("P(S) sums to")):
        BayesNet().add("S", ["s0", "s1"], [0.2, 0.8 + 1e-8])


def test_wrong_shape():
    net = BayesNet().add("S", ["s0", "s1"], [0.2, 0.8])
    with pytest.raises(ValueError) as err:
        net.add("R", ["r0", "r1"], [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], parents=["S"])
    assert str(err.value) == "P(R | S): table has shape (3, 2), expected (2, 2) (S: 2, R: 2)"
    with pytest.raises(ValueError, match=re.escape("P(D): table has shape (3,), expected (2,)")):
        BayesNet().add("D", ["d0", "d1"], [0.5, 0.25, 0.25])


def test_negative_entry():
    net = BayesNet().add("S", ["s0", "s1"], [0.2, 0.8])
    with pytest.raises(ValueError) as err:
        net.add("R", ["r0", "r1"], [[0.9, 0.1], [1.2, -0.2]], parents=["S"])
    assert str(err.value) == "P(R | S=s1) has a negative entry -0.2 for R=r1"


def test_non_finite_entry():
    with pytest.raises(ValueError, match=re.escape("P(S) has a non-finite entry")):
        BayesNet().add("S", ["s0", "s1"], [float("nan"), 1.0])


def test_unknown_parent():
    net = BayesNet().add("S", ["s0", "s1"], [0.2, 0.8])
    with pytest.raises(ValueError) as err:
        net.add("R", ["r0", "r1"], [[0.9, 0.1], [0.2, 0.8]], parents=["Q"])
    assert "unknown parent 'Q' of 'R'" in str(err.value)
    assert "variables are: S" in str(err.value)
    with pytest.raises(ValueError, match="unknown parent 'Q' of 'R'; variables are: S, R"):
        BayesNet(
            [
                Variable("S", ["s0", "s1"], [], [0.2, 0.8]),
                Variable("R", ["r0", "r1"], ["Q"], [[0.9, 0.1], [0.2, 0.8]]),
            ]
        )


def test_cycle_and_duplicate():
    half = [[0.5, 0.5], [0.5, 0.5]]
    with pytest.raises(ValueError, match=r"the graph has a cycle: (A -> B -> A|B -> A -> B)"):
        BayesNet([Variable("A", ["a0", "a1"], ["B"], half), Variable("B", ["b0", "b1"], ["A"], half)])
    with pytest.raises(ValueError, match=r"cycle: A -> A"):
        BayesNet([Variable("A", ["a0", "a1"], ["A"], half)])
    with pytest.raises(ValueError, match=r"'A' lists itself as a parent \(cycle A -> A\)"):
        BayesNet().add("A", ["a0", "a1"], half, parents=["A"])
    with pytest.raises(ValueError, match="variable 'S' is defined twice"):
        lab_network().add("S", ["s0", "s1"], [0.5, 0.5])
    with pytest.raises(ValueError, match="variable 'A' is defined twice"):
        BayesNet([Variable("A", ["a0"], [], [1.0]), Variable("A", ["a0"], [], [1.0])])


def test_constructor_from_variables_in_any_order():
    # children before parents is fine in the list form; axis order is the list's
    net = BayesNet(
        [
            Variable("R", ["r0", "r1"], ["S"], [[0.9, 0.1], [0.2, 0.8]]),
            Variable("S", ["s0", "s1"], [], [0.2, 0.8]),
        ]
    )
    joint, names = net.joint()
    assert names == ("R", "S")
    np.testing.assert_allclose(joint, [[0.2 * 0.9, 0.8 * 0.2], [0.2 * 0.1, 0.8 * 0.8]])


def test_bad_values():
    with pytest.raises(ValueError, match="duplicate values"):
        BayesNet().add("S", ["s0", "s0"], [0.5, 0.5])
    with pytest.raises(ValueError, match="at least one value"):
        BayesNet().add("S", [], [])


# ---------------------------------------------------------------------------
# Query errors


def test_unknown_variable_in_query(net):
    with pytest.raises(
        ValueError, match=re.escape("unknown variable 'X' in targets; variables are: S, D, R, G, L")
    ):
        net.query("X")
    with pytest.raises(ValueError, match=re.escape("unknown variable 'X' in evidence")):
        net.query("G", evidence={"X": "x0"})
    with pytest.raises(ValueError, match=re.escape("unknown variable 'X' in do")):
        net.query("G", do={"X": "x0"})


def test_unknown_value_in_query(net):
    with pytest.raises(
        ValueError, match=re.escape("unknown value 'g3' for G in evidence; allowed values: g0, g1, g2")
    ):
        net.query("R", evidence={"G": "g3"})
    with pytest.raises(ValueError, match=re.escape("unknown value 'l2' for L in do; allowed values: l0, l1")):
        net.query("G", do={"L": "l2"})


def test_zero_probability_evidence():
    net = (
        BayesNet()
        .add("A", ["a0", "a1"], [1.0, 0.0])
        .add("B", ["b0", "b1"], [[1.0, 0.0], [0.0, 1.0]], parents=["A"])
    )
    with pytest.raises(ValueError) as err:
        net.query("A", evidence={"B": "b1"})
    assert str(err.value) == "evidence B=b1 has probability 0; cannot condition on it"
    # observing A=a1 is impossible, forcing it is not
    with pytest.raises(ValueError, match="evidence A=a1 has probability 0"):
        net.query("B", evidence={"A": "a1"})
    np.testing.assert_allclose(net.query("B", do={"A": "a1"}).probs, [0.0, 1.0])
    # evidence contradicting an intervention
    with pytest.raises(ValueError, match=re.escape("evidence A=a0 has probability 0 under do(A=a1)")):
        net.query("B", evidence={"A": "a0"}, do={"A": "a1"})


# ---------------------------------------------------------------------------
# Report


def test_format_report(results):
    report = format_report(results)
    for label in EXPECTED_QUERIES:
        assert label in report
    lines = report.splitlines()
    assert any("P(R | g2):" in ln and "P(R | do(g2)):" in ln for ln in lines)
    assert any("P(G | l1):" in ln and "P(G | do(l1)):" in ln for ln in lines)
    side = next(ln for ln in lines if "P(R | g2):" in ln and "P(R | do(g2)):" in ln)
    assert "r0=0.24515" in side and "r0=0.34000" in side
    assert "cuts the edge" in report
    assert "g1=0.13790" in report


def test_main_prints_report(capsys):
    assert main(["lab", "bayesnet"]) == 0
    out = capsys.readouterr().out
    assert all(q.label in out for q in QUERIES)
    assert main(["lab", "bayesnet", "--decimals", "3"]) == 0
    assert "g0=0.204  g1=0.232  g2=0.564" in capsys.readouterr().out


def test_lab_a_imports_without_jax():
    """Lab A needs numpy alone: neither the library nor the lab's queries load JAX."""
    for module in ("jaxtrainer.labs.bayesnet", "jaxtrainer.labs.student_network"):
        code = f"import sys, {module}; assert 'jax' not in sys.modules, 'jax loaded'"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
