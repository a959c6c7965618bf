"""The statement's rubric: points per question (25 for the code), the checks that decide each
question, and how a TA changes them (`--rubric FILE`, TOML).

A check's points are earned when it passes, or when it is "not graded" because an earlier check
failed (a mistake costs once) or "not applicable" to the submission's year; `partial = true` gives a
failed check the share of its configurations that passed. The grader alone computes and caps the
scores: nothing a submission hands back is a score.
"""

from __future__ import annotations

import math
import sys
from typing import Dict, List, NamedTuple, Tuple

from ..errors import InputError
from .plan import CHECK_IDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # Python 3.10  # pyright: ignore[reportMissingImports]


class Question(NamedTuple):
    """A question of the statement (id "Q1", title: the method it asks for), worth its checks' points."""

    id: str
    title: str


class Rule(NamedTuple):
    """How one check scores: the question it counts toward, its points, what a failed or not-graded
    check still earns."""

    question: str | None  # None: reported, not scored
    points: float
    partial: bool = False  # a failed check earns the share of its configurations that passed
    not_graded: float = 1.0  # the share of its points a "not graded" check still earns


QUESTIONS = (
    Question("Q1", "create_activation_function"),
    Question("Q2", "create_mlp"),
    Question("Q3", "create_cnn"),
    Question("Q4", "compute_loss_and_mae"),
    Question("Q5", "training_step"),
    Question("Q6", "evaluate"),
)
# The statement's points: Q1 1, Q2 5, Q3 6, Q4 4, Q5 6, Q6 3 (25). The builders' questions are
# split over the checks that judge them; train_loop and the equivariance figure are the
# experiments' part (graded from the report) and are reported without points.
RULES: Dict[str, Rule] = {
    "import": Rule(None, 0.0),
    "activation_function": Rule("Q1", 1.0),
    "structure.mlp": Rule("Q2", 4.0),
    "activation_instances": Rule("Q2", 1.0),
    "structure.cnn": Rule("Q3", 5.0),
    "init": Rule(None, 0.0),
    "forward": Rule("Q3", 1.0),
    "loss_and_mae": Rule("Q4", 4.0),
    "training_step": Rule("Q5", 6.0),
    "evaluate": Rule("Q6", 3.0),
    "train_loop_logs": Rule(None, 0.0),
    "equivariance": Rule(None, 0.0),
}


class Rubric(NamedTuple):
    """The questions and one rule per check id; `load` reads a TA's changes from TOML."""

    questions: tuple = QUESTIONS
    rules: Dict[str, Rule] = RULES

    @property
    def max_score(self) -> float:
        """Every check's points together: the total is capped at it."""
        return sum(rule.points for rule in self.rules.values())

    def score(self, verdicts: List[dict], imported: bool) -> tuple:
        """(checks with their points, questions with theirs, total): nothing without an import."""
        checks = []
        for verdict in verdicts:
            rule = self.rules[verdict["id"]]
            earned = 0.0
            if imported:
                if verdict["result"] in ("passed", "not applicable"):
                    earned = rule.points
                elif verdict["result"] == "not graded":
                    earned = rule.points * rule.not_graded
                elif rule.partial:
                    earned = rule.points * verdict.get("fraction", 0.0)
            checks.append(
                {**verdict, "question": rule.question, "score": round(earned, 2), "max_score": rule.points}
            )
        questions = []
        for question in self.questions:
            mine = [c for c in checks if c["question"] == question.id]
            questions.append(
                {
                    "id": question.id,
                    "title": question.title,
                    "score": round(min(sum(c["score"] for c in mine), sum(c["max_score"] for c in mine)), 2),
                    "max_score": sum(c["max_score"] for c in mine),
                }
            )
        total = round(min(sum(q["score"] for q in questions), self.max_score), 2)
        return checks, questions, total


def load(path: str | None) -> Rubric:
    """The default rubric, or a TA's TOML file:

        [questions]
        Q1 = "create_activation_function"        # id = title; only the questions listed count
        [checks.structure_cnn]                   # or [checks."structure.cnn"]
        question = "Q3"
        points = 4
        partial = true
        not_graded = 0.5

    Checks not named keep the default rule. ValueError names what is wrong."""
    if path is None:
        return Rubric()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"--rubric {path!r} is not valid TOML ({e})") from None
    unknown = set(data) - {"questions", "checks"}
    if unknown:
        raise InputError(
            f"--rubric {path!r}: unknown table {sorted(unknown)[0]!r}; allowed: questions, checks"
        )
    questions = QUESTIONS
    if "questions" in data:
        if not isinstance(data["questions"], dict) or not data["questions"]:
            raise InputError(f"--rubric {path!r}: [questions] must map ids to titles")
        questions = tuple(Question(str(k), str(v)) for k, v in data["questions"].items())
    ids = {q.id for q in questions}
    rules = dict(RULES)
    for key, table in data.get("checks", {}).items():
        check_id, rule = _rule(path, key, table, ids)
        rules[check_id] = rule
    for check_id, rule in rules.items():
        if rule.question is not None and rule.question not in ids:
            rules[check_id] = rule._replace(question=None, points=0.0)
    return Rubric(questions, rules)


def _rule(path: str, key: str, table, ids) -> Tuple[str, Rule]:
    """(check id, its rule) of the TOML table `[checks.key]`, every field checked by name."""
    dotted = key.replace("_", ".", 1)
    check_id = key if key in CHECK_IDS else dotted if dotted in CHECK_IDS else None
    if check_id is None:
        raise InputError(f"--rubric {path!r}: unknown check {key!r}; the checks are {', '.join(CHECK_IDS)}")
    if not isinstance(table, dict):
        raise InputError(f"--rubric {path!r}: [checks.{key}] must be a table")
    extra = set(table) - {"question", "points", "partial", "not_graded"}
    if extra:
        raise InputError(f"--rubric {path!r}: [checks.{key}] has unknown key {sorted(extra)[0]!r}")
    rule = RULES[check_id]._replace(**table)
    if rule.question is not None and rule.question not in ids:
        raise InputError(
            f"--rubric {path!r}: [checks.{key}] names question {rule.question!r}, not one of {sorted(ids)}"
        )
    if not (isinstance(rule.points, (int, float)) and math.isfinite(rule.points) and rule.points >= 0):
        raise InputError(
            f"--rubric {path!r}: [checks.{key}] points must be a number >= 0, got {rule.points!r}"
        )
    if not (isinstance(rule.not_graded, (int, float)) and 0 <= rule.not_graded <= 1):
        raise InputError(
            f"--rubric {path!r}: [checks.{key}] not_graded must be in [0, 1], got {rule.not_graded!r}"
        )
    return check_id, rule._replace(points=float(rule.points), partial=bool(rule.partial))
