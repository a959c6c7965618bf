"""The checks of `jaxtrainer grade` that run inside one submission's own process.

Run as ``python -m torch_compat.grade_checks --result PATH`` in a folder holding the submission as
``solution.py`` and the data as ``./rotated_fashion_mnist``. The JAX engine is the reference: the
student's layers are compared position by position with the engine's builders, the student's
weights are loaded into the engine (``bridge.from_torch``) and both run on the same batches, and the
first place where they part is reported in the student's terms. A structural mistake is counted
once, by ``structure.*``: the later checks run the reference on the student's own layer sequence.
Where a training check fails, short PyTorch re-enactments of the usual mistakes (SGD, an ignored
lr, shuffled batches, ...) name the likely cause: they explain, the engine judges.

The result file is rewritten after each check, so a run killed at its timeout still reports the
checks it finished and the one it was in.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
import time
import traceback
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx

from jaxtrainer import files, models, presets
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.grade import plan

from . import bridge, grading

SOLUTION = "solution"
LOG_KEYS = ("train_loss", "test_loss", "train_mae", "test_mae")
_ATTRIBUTES = {  # what must match, per layer type (PyTorch's attribute names)
    "Linear": ("in_features", "out_features"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
    "MaxPool2d": ("kernel_size", "stride"),
    "AdaptiveMaxPool2d": ("output_size",),
    "Flatten": ("start_dim", "end_dim"),
}
_PAIRS = ("kernel_size", "stride", "padding", "output_size")
_ACTIVATIONS = ("ReLU", "Tanh", "Sigmoid")


class Mistake(Exception):
    """A failed check; the message says where and how, in the student's terms."""


# -- calling the student's code ----------------------------------------------------------------


def _exception(e: BaseException) -> str:
    """``TypeError: ... (solution.py, line 12)``: the error and the last line of solution.py it
    went through."""
    line = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        if os.path.basename(frame.f_code.co_filename) == f"{SOLUTION}.py":
            line = lineno
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    where = f" ({SOLUTION}.py, line {line})" if line is not None else ""
    return f"{type(e).__name__}{': ' + text if text else ''}{where}"


def _call(what: str, fn: Callable, *args, **kwargs):
    """The student's `fn(*args)`; anything it raises (exit() too) becomes this check's failure."""
    try:
        return fn(*args, **kwargs)
    except (Exception, SystemExit) as e:
        raise Mistake(f"{what} raised {_exception(e)}") from e


def _attribute(owner, name: str, owner_name: str):
    if not hasattr(owner, name):
        raise Mistake(f"{owner_name} has no {name}")
    return getattr(owner, name)


class Context:
    """What the checks share: the student's module, their Trainer, and the verdicts so far (a
    later check names an earlier failure as the likely cause)."""

    def __init__(self):
        self.module = None
        self.passed: Dict[str, bool] = {}
        self._trainer = self._pristine = None

    def _construct(self):
        """The student's Trainer with the training settings, on ./rotated_fashion_mnist."""
        s = plan.TRAINING
        config = _student_config(self, s.config)
        call = (
            f"Trainer({s.network_type!r}, {_config_text(s.config)}, lr={s.lr:g}, "
            f"batch_size={s.batch_size}, activation_name={s.activation!r})"
        )
        return _call(call, self.module.Trainer, s.network_type, config, s.lr, s.batch_size, s.activation)

    def trainer(self):
        """One student Trainer shared by the checks that may use it up."""
        if self._trainer is None:
            self._trainer = self._construct()
            try:  # kept as constructed, so the student's loader (slow on 60,000 PNGs) runs once
                self._pristine = copy.deepcopy(self._trainer)
            except Exception:
                self._pristine = None
        return self._trainer

    def fresh_trainer(self):
        """A student Trainer as constructed, never trained."""
        self.trainer()
        return copy.deepcopy(self._pristine) if self._pristine is not None else self._construct()


def _config_text(config) -> str:
    default = NetworkConfiguration()
    fields = [f"{k}={v}" for k, v in config._asdict().items() if getattr(default, k) != v]
    return f"NetworkConfiguration({', '.join(fields)})"


def _student_config(ctx: Context, config):
    """The case's configuration as the student's own NetworkConfiguration."""
    return _call(f"{_config_text(config)}", ctx.module.NetworkConfiguration, **config._asdict())


# -- networks: the student's, the reference's --------------------------------------------------


def _builder(case: plan.Case) -> str:
    return f"create_{case.network_type}"


def _where(case: plan.Case) -> str:
    return f"{_builder(case)} ({case.label})"


def _build(ctx: Context, case: plan.Case, seed: int | None = None) -> torch.nn.Sequential:
    """The student's network for a case, under `torch.manual_seed(seed)` when a seed is given."""
    c, h, w = case.input_shape
    builder = _attribute(ctx.module.Trainer, _builder(case), "Trainer")
    config = _student_config(ctx, case.config)
    if seed is not None:
        torch.manual_seed(seed)
    first = c * h * w if case.network_type == "mlp" else c
    activation = getattr(torch.nn, case.activation)()
    model = _call(
        f"Trainer.{_builder(case)}({first}, ...) ({case.label})", builder, first, config, activation
    )
    if not isinstance(model, torch.nn.Sequential):
        raise Mistake(f"{_where(case)} returned a {type(model).__name__}, not a torch.nn.Sequential")
    return model


def _positions(model: torch.nn.Sequential) -> list:
    """The layer at each position, as forward runs them: `_modules`, where `children()` would list
    a module placed at several positions once."""
    return list(model._modules.values())


def _reference_network(case: plan.Case) -> models.Sequential:
    """The engine builders' network for the case, abstract: its layers, no weights drawn."""
    c, h, w = case.input_shape
    activation = case.activation.lower()
    if case.network_type == "mlp":
        build = lambda: models.build_mlp(c * h * w, case.config, activation, rngs=nnx.Rngs(0))  # noqa: E731
    else:
        build = lambda: models.build_cnn(c, case.config, activation, rngs=nnx.Rngs(0))  # noqa: E731
    return nnx.eval_shape(build)


def _engine(model: torch.nn.Module, where: str):
    """The engine's network running the student's layer sequence with the student's weights."""
    try:
        return bridge.from_torch(model)
    except ValueError as e:
        raise Mistake(f"{where}: the reference cannot run this network: {e}") from None


_apply = nnx.jit(lambda network, x: network(x))  # one program per network (eagerly: one per op)


def _pair(value):
    if isinstance(value, int):
        return (value, value)
    if value == "valid":
        return (0, 0)
    return tuple(value) if isinstance(value, (tuple, list)) else value


def _signature(layer) -> Tuple[str, Dict]:
    name = type(layer).__name__
    attrs = {}
    for attr in _ATTRIBUTES.get(name, ()):
        value = getattr(layer, attr, 0 if attr == "padding" else None)  # the engine never pads
        attrs[attr] = _pair(value) if attr in _PAIRS else value
    return name, attrs


def _type_hint(i: int, student: list, reference: list) -> str:
    """Why position i holds another layer type, when the usual mistake explains it."""
    theirs, ours = student[i][0], reference[i][0]
    before = reference[i - 1][0] if i else None
    if ours in _ACTIVATIONS and theirs in _ACTIVATIONS:
        return f" (the builder was given {ours}(): is the activation argument ignored?)"
    if ours in _ACTIVATIONS and before == "Conv2d":
        last_conv = max(j for j, (name, _) in enumerate(reference) if name == "Conv2d")
        if i - 1 == last_conv:
            return " (an activation also follows the last Conv2d)"
        return " (an activation follows every Conv2d)"
    if ours in _ACTIVATIONS and before == "Linear":
        return " (an activation follows every hidden Linear)"
    if theirs in _ACTIVATIONS and ours == "Linear" and i == len(reference) - 1:
        return " (no activation before the output Linear)"
    return ""


def _attribute_hint(name: str, attr: str) -> str:
    hints = {
        ("Conv2d", "kernel_size"): " (are net_config.kernel_sizes used?)",
        ("Conv2d", "stride"): " (are net_config.strides used?)",
        ("Conv2d", "padding"): " (the reference's convolutions have no padding)",
        ("MaxPool2d", "kernel_size"): " (the reference pools with MaxPool2d(2))",
        ("AdaptiveMaxPool2d", "output_size"): " (the reference pools to (4, 4) after the last conv)",
    }
    return hints.get((name, attr), "")


def _structure_difference(student_layers: list, reference_layers: list) -> str | None:
    """The first position where the student's layer sequence parts from the reference's."""
    student = [_signature(layer) for layer in student_layers]
    reference = [_signature(layer) for layer in reference_layers]
    for i, ((name, attrs), (ref_name, ref_attrs)) in enumerate(zip(student, reference)):
        if name != ref_name:
            hint = _type_hint(i, student, reference)
            return f"position {i} is {name}, the reference has {ref_name} there{hint}"
        for attr, expected in ref_attrs.items():
            if attrs[attr] != expected:
                return (
                    f"position {i} is a {name} with {attr}={attrs[attr]}, the reference's has "
                    f"{attr}={expected}{_attribute_hint(name, attr)}"
                )
    if len(student) < len(reference):
        missing = ", ".join(name for name, _ in reference[len(student) :])
        return f"the network ends after position {len(student) - 1}; the reference continues with {missing}"
    if len(student) > len(reference):
        extra = ", ".join(name for name, _ in student[len(reference) :])
        return f"the reference ends at position {len(reference) - 1}; this network continues with {extra}"
    return None


def _first_of(failures: List[str], n_cases: int) -> str:
    """The first failing configuration's message, and how many others fail."""
    if len(failures) == 1:
        return failures[0]
    others = len(failures) - 1
    if others == n_cases - 1:
        return f"{failures[0]}; the other {others} configurations differ too"
    return f"{failures[0]}; {others} of the other {n_cases - 1} configurations differ too"


# -- the checks ---------------------------------------------------------------------------------


def check_import(ctx: Context) -> None:
    module = _call(f"importing {SOLUTION}.py", importlib.import_module, SOLUTION)
    missing = [name for name in ("Trainer", "NetworkConfiguration") if not hasattr(module, name)]
    if missing:
        raise Mistake(f"{SOLUTION}.py defines no {' and no '.join(missing)}")
    ctx.module = module


def _check_structure(ctx: Context, cases) -> None:
    failures = []
    for case in cases:
        reference = list(_reference_network(case).layers)
        difference = _structure_difference(_positions(_build(ctx, case)), reference)
        if difference is not None:
            failures.append(f"{_where(case)}: {difference}")
    if failures:
        raise Mistake(_first_of(failures, len(cases)))


def check_structure_mlp(ctx: Context) -> None:
    _check_structure(ctx, plan.MLP_CASES)


def check_structure_cnn(ctx: Context) -> None:
    _check_structure(ctx, plan.CNN_CASES)


def check_activation_instances(ctx: Context) -> None:
    for case in (plan.MLP_CASES[0], plan.CNN_CASES[0]):
        model = _build(ctx, case)
        layers = _positions(model)
        at: Dict[int, List[int]] = {}
        for i, layer in enumerate(layers):
            if type(layer).__module__ == torch.nn.modules.activation.__name__:
                at.setdefault(id(layer), []).append(i)
        shared = [positions for positions in at.values() if len(positions) > 1]
        if shared:
            positions = shared[0]
            name = type(layers[positions[0]]).__name__
            children = list(model.children())
            listed = sum(type(child).__name__ == name for child in children)
            raise Mistake(
                f"{_where(case)}: positions {', '.join(map(str, positions))} hold one and the same "
                f"{name} instance. torch's children() lists a module once, so list(model.children()) "
                f"has {len(children)} entries for the network's {len(layers)} positions and shows "
                f"{listed} {name} where there are {sum(len(p) for p in at.values())} activations; "
                "give each position its own instance (copy.deepcopy(activation))"
            )


def check_init(ctx: Context) -> None:
    for case in plan.INIT_CASES:
        for seed in plan.INIT_SEEDS:
            student = list(_build(ctx, case, seed).state_dict().items())
            torch.manual_seed(seed)  # the torch layers' constructors draw PyTorch's default init
            reference = list(
                bridge.to_torch(_reference_network(case), copy_weights=False).state_dict().items()
            )
            if [tuple(v.shape) for _, v in student] != [tuple(v.shape) for _, v in reference]:
                raise Mistake(
                    f"{_where(case)}: the parameters' shapes differ from the reference's, so their "
                    f"initial values cannot be compared (see structure.{case.network_type})"
                )
            for (key, value), (_, expected) in zip(student, reference):
                if not torch.equal(value, expected):
                    gap = (value - expected).abs().max().item()
                    raise Mistake(
                        f"{_where(case)} under torch.manual_seed({seed}): {key} is not PyTorch's "
                        f"default initialisation drawn in the homework's layer order (max difference "
                        f"{gap:.3g}): layers created in another order, the seed reset, or weights "
                        "initialised by hand?"
                    )


def check_forward(ctx: Context) -> None:
    rng = np.random.default_rng(0)
    failures = []
    cases = (*plan.MLP_CASES, *plan.CNN_CASES)
    for case in cases:
        model = _build(ctx, case, presets.SEED)
        x = rng.standard_normal((plan.FORWARD_BATCH, *case.input_shape)).astype(np.float32)
        with torch.no_grad():
            out = _call(f"the network of {_where(case)}", model, torch.from_numpy(x))
        expected = np.asarray(_apply(_engine(model, _where(case)), x))
        out = np.asarray(out.detach() if isinstance(out, torch.Tensor) else out, dtype=np.float32)
        if out.shape != expected.shape:
            failures.append(
                f"{_where(case)}: the network returns shape {out.shape} for {len(x)} images, the "
                f"reference {expected.shape}"
            )
        elif not np.abs(out - expected).max() <= plan.TOLERANCE:
            failures.append(
                f"{_where(case)}: with the same weights, the output differs from the reference's "
                f"by up to {np.abs(out - expected).max():.3g}"
            )
    if failures:
        raise Mistake(_first_of(failures, len(cases)))


class _Reference(grading.Trainer):
    """The engine's Trainer on a given torch network (the student's layers and weights) and the
    student's data, with the training settings; the grading flavour keeps the network a torch
    module, trained by the engine."""

    def __init__(self, network: torch.nn.Module, data):
        self._given = network
        s = plan.TRAINING
        try:
            super().__init__(
                s.network_type, s.config, s.lr, s.batch_size, s.activation, dataset=data, progress=False
            )
        except ValueError as e:
            raise Mistake(f"the reference cannot train on trainer.train and trainer.test: {e}") from None

    def create_mlp(self, *args, **kwargs):
        return self._given

    create_cnn = create_mlp


def _network(trainer) -> torch.nn.Module:
    network = _attribute(trainer, "network", "the Trainer")
    if not isinstance(network, torch.nn.Module):
        raise Mistake(f"trainer.network is a {type(network).__name__}, not a torch.nn.Module")
    return network


def _data(trainer):
    """(X_train, y_train), (X_test, y_test) of the student's Trainer, as float32 tensors."""
    try:
        (X, y), (X_test, y_test) = trainer.train, trainer.test
        return tuple(
            tuple(torch.as_tensor(a, dtype=torch.float32) for a in split)
            for split in ((X, y), (X_test, y_test))
        )
    except (AttributeError, TypeError, ValueError, RuntimeError):
        raise Mistake("trainer.train and trainer.test must be (X, y) pairs of tensors") from None


def _two_floats(value, what: str) -> Tuple[float, float]:
    """`(loss, mae)` as floats; anything else is named."""
    if isinstance(value, torch.Tensor):
        raise Mistake(
            f"{what} returned one tensor of shape {tuple(value.shape)} (the loss alone?), not (loss, mae)"
        )
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        kind = (
            f"a {type(value).__name__} of {len(value)}" if isinstance(value, (tuple, list)) else repr(value)
        )
        raise Mistake(f"{what} returned {kind}, not the pair (loss, mae)")
    try:
        return tuple(float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for v in value)
    except (TypeError, ValueError, RuntimeError):
        raise Mistake(f"{what} returned {value!r}: loss and mae must be scalars") from None


def _close(a: float, b: float, tolerance: float = plan.TOLERANCE) -> bool:
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def _loss_candidates(prediction: np.ndarray, y: np.ndarray) -> Dict[str, Tuple[float, float]]:
    """(loss, mae) as the usual mistakes compute them, from the same predictions."""
    error = prediction - y.reshape(prediction.shape)
    broadcast = prediction - y.reshape(-1)[None, :]  # (N, 1) against (N,): an N x N table
    mse, mae = float(np.mean(error**2)), float(np.mean(np.abs(error)))
    return {
        "(mae, loss): the two are swapped": (mae, mse),
        "the loss is the RMSE (the square root of the MSE)": (float(np.sqrt(mse)), mae),
        "sums over the batch instead of averaging": (float(np.sum(error**2)), float(np.sum(np.abs(error)))),
        "predictions (N, 1) and targets (N,) broadcast to an N x N table: reshape y to (N, 1)": (
            float(np.mean(broadcast**2)),
            float(np.mean(np.abs(broadcast))),
        ),
    }


def check_loss_and_mae(ctx: Context) -> None:
    trainer = ctx.trainer()
    (X, y), (X_test, y_test) = _data(trainer)
    network = _network(trainer)
    reference = _Reference(copy.deepcopy(network), ((X, y), (X_test, y_test)))
    n = min(64, len(X))
    calls = (
        ("compute_loss_and_mae", f"the first {n} training rows", X[:n], y[:n]),
        ("evaluate", f"the first {n} training rows", X[:n], y[:n]),
        ("evaluate", "the test set", X_test, y_test),
    )
    for method, rows, Xa, ya in calls:
        what = f"Trainer.{method} on {rows}"
        got = _two_floats(_call(what, _attribute(trainer, method, "Trainer"), Xa, ya), what)
        loss, mae = (float(v) for v in reference.evaluate(Xa, ya.reshape(-1, 1)))
        if _close(got[0], loss) and _close(got[1], mae):
            continue
        with torch.no_grad():
            prediction = network(Xa).numpy().astype(np.float64)
        causes = [
            c
            for c, v in _loss_candidates(prediction, ya.numpy()).items()
            if _close(got[0], v[0]) and _close(got[1], v[1])
        ]
        cause = f": {causes[0]}" if causes else ""
        raise Mistake(
            f"{what} returned loss {got[0]:.6g} and mae {got[1]:.6g}, the reference's MSE and MAE "
            f"are {loss:.6g} and {mae:.6g}{cause}"
        )


def _weights(network: torch.nn.Module) -> List[Tuple[str, torch.Tensor]]:
    return [(key, value.detach().clone()) for key, value in network.state_dict().items()]


def _largest_gap(weights, expected) -> Tuple[float, str]:
    """The largest absolute difference between two weight lists, and the key where it is."""
    gaps = [((a - b).abs().max().item(), key) for (key, a), (_, b) in zip(weights, expected)]
    return max(gaps)


def _relative_gap(weights, expected, start) -> float:
    """How far apart two trainings from `start` ended, relative to how far the expected one went:
    ||weights - expected|| / ||expected - start||. (Elementwise, a few weights whose gradient is
    rounding noise may differ by up to the lr: Adam scales every gradient to a step of ~lr.)"""
    apart = sum(((a - b) ** 2).sum().item() for (_, a), (_, b) in zip(weights, expected))
    went = sum(((b - c) ** 2).sum().item() for (_, b), (_, c) in zip(expected, start))
    if went == 0.0:
        return 0.0 if apart == 0.0 else float("inf")
    return (apart / went) ** 0.5


def _optimizer_mistakes(lr: float):
    """(cause, optimizer factory, loss, zero_grad each step) for the usual training-step mistakes."""
    default = presets.DEFAULT_LR
    mse = lambda p, y: F.mse_loss(p, y.view_as(p))  # noqa: E731
    mae = lambda p, y: F.l1_loss(p, y.view_as(p))  # noqa: E731
    return (
        ("matches SGD, not Adam", lambda p: torch.optim.SGD(p, lr=lr), mse, True),
        (
            "matches SGD with momentum 0.9, not Adam",
            lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
            mse,
            True,
        ),
        (
            f"lr ignored: the steps match Adam with lr={default:g} (the default), not the lr={lr:g} "
            "given to Trainer",
            lambda p: torch.optim.Adam(p, lr=default),
            mse,
            True,
        ),
        (
            f"matches SGD with lr={default:g}: not Adam, and the lr={lr:g} given to Trainer is ignored",
            lambda p: torch.optim.SGD(p, lr=default),
            mse,
            True,
        ),
        ("matches RMSprop, not Adam", lambda p: torch.optim.RMSprop(p, lr=lr), mse, True),
        ("matches Adagrad, not Adam", lambda p: torch.optim.Adagrad(p, lr=lr), mse, True),
        (
            "the gradients accumulate across steps: optimizer.zero_grad() is not called",
            lambda p: torch.optim.Adam(p, lr=lr),
            mse,
            False,
        ),
        ("the steps minimise the MAE, not the MSE", lambda p: torch.optim.Adam(p, lr=lr), mae, True),
    )


def _likely_step_cause(initial: torch.nn.Module, batches, student_weights, lr: float) -> str | None:
    """The usual mistake whose steps, re-enacted in PyTorch from the same weights, give the
    student's weights after every step."""
    start = _weights(initial)
    if all(_largest_gap(w, start)[0] == 0.0 for w in student_weights):
        return "the weights do not change: is optimizer.step() called, on this network's parameters?"
    for cause, make_optimizer, loss_fn, zero_grad in _optimizer_mistakes(lr):
        network = copy.deepcopy(initial)
        optimizer = make_optimizer(network.parameters())
        for (xb, yb), expected in zip(batches, student_weights):
            if zero_grad:
                optimizer.zero_grad()
            loss_fn(network(xb), yb).backward()
            optimizer.step()
            if _relative_gap(_weights(network), expected, start) > plan.STEP_TOLERANCE:
                break
        else:
            return cause
    return None


def _optimizer_problem(trainer, lr: float) -> str | None:
    """The settings of the trainer's Adam-family optimizer that make it other than Adam(lr): a few
    steps cannot tell AdamW's decay (lr * 0.01 of each weight per step), fifty epochs can."""
    found = [(name, v) for name, v in vars(trainer).items() if isinstance(v, torch.optim.Optimizer)]
    if len(found) != 1 or not isinstance(found[0][1], (torch.optim.Adam, torch.optim.AdamW)):
        return None  # none, several, or not Adam's family: the steps above say what they match
    name, optimizer = found[0]
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr).defaults
    group = optimizer.param_groups[0]
    settings = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    differ = [f"{key}={group[key]!r} (Adam's: {adam[key]!r})" for key in settings if group[key] != adam[key]]
    if not differ:
        return None
    return (
        f"trainer.{name} is {type(optimizer).__name__} with {', '.join(differ)}; the homework's is "
        f"torch.optim.Adam(network.parameters(), lr={lr:g})"
    )


def _returned_problem(value, loss: float, mae: float) -> str | None:
    """What is wrong with the first step's return value, against the batch's MSE and MAE before
    the update."""
    try:
        got = _two_floats(value, "Trainer.training_step")
    except Mistake as e:
        return str(e)
    if _close(got[0], loss) and _close(got[1], mae):
        return None
    if _close(got[0], mae) and _close(got[1], loss):
        return "Trainer.training_step returned (mae, loss): the two are swapped"
    return (
        f"Trainer.training_step returned loss {got[0]:.6g} and mae {got[1]:.6g} for the first batch, "
        f"whose MSE and MAE before the update are {loss:.6g} and {mae:.6g}"
    )


def check_training_step(ctx: Context) -> None:
    s = plan.TRAINING
    trainer = ctx.trainer()
    (X, y), test = _data(trainer)
    size = max(1, min(s.step_batch, len(X) // s.steps))
    batches = [(X[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(s.steps)]
    initial = copy.deepcopy(_network(trainer))
    reference = _Reference(copy.deepcopy(initial), ((X, y), test))
    step = _attribute(trainer, "training_step", "Trainer")
    returned, student_weights, reference_weights, first = [], [], [], None
    for xb, yb in batches:
        returned.append(_call("Trainer.training_step", step, xb, yb))
        student_weights.append(_weights(_network(trainer)))
        loss_mae = reference.training_step(xb, yb.reshape(-1, 1))
        first = first or tuple(float(v) for v in loss_mae)
        reference_weights.append(_weights(reference.network))
    problems, start = [], _weights(initial)
    settings = _optimizer_problem(trainer, s.lr)
    for k, (weights, expected) in enumerate(zip(student_weights, reference_weights), start=1):
        if _relative_gap(weights, expected, start) > plan.STEP_TOLERANCE:
            gap, key = _largest_gap(weights, expected)
            cause = _likely_step_cause(initial, batches, student_weights, s.lr) or settings
            problems.append(
                f"after step {k} of {s.steps}, the weights differ from Adam's (lr={s.lr:g}) by up to "
                f"{gap:.3g} (in {key}): " + (cause or "they match neither SGD, RMSprop nor Adagrad either")
            )
            break
    if settings and not problems:  # steps within the tolerance, but not Adam's settings
        problems.append(settings)
    returned_problem = _returned_problem(returned[0], *first)
    if returned_problem:
        problems.insert(0, returned_problem)
    if problems:
        raise Mistake("; ".join(problems))


def _row_keys(X) -> List[int]:
    """A key per row of images (a hash of its bytes): which training row a batch row is."""
    rows = np.ascontiguousarray(torch.as_tensor(X).detach().numpy(), dtype=np.float32)
    return [hash(row.tobytes()) for row in rows.reshape(len(rows), -1)]


class _BatchRecorder:
    """Stands in for the student's `trainer.training_step` (an instance attribute shadows the
    method their train_loop calls as `self.training_step`) and keeps, for each batch, the indices
    in X_train of its rows (None for a row that is not one of them)."""

    def __init__(self, trainer, X_train):
        self.step = trainer.training_step
        self.index: Dict[int, int] = {}
        for i, key in enumerate(_row_keys(X_train)):
            self.index.setdefault(key, i)
        self.batches: List[List[int | None]] = []
        trainer.training_step = self

    def __call__(self, X_batch, y_batch):
        self.batches.append([self.index.get(key) for key in _row_keys(X_batch)])
        return self.step(X_batch, y_batch)


def _batch_problems(batches: List[List[int | None]], n: int, batch_size: int, epochs: int) -> List[str]:
    """What is wrong with the batches train_loop passed to training_step, by the indices of the
    training rows they hold (nothing can be said of rows that are not rows of trainer.train)."""
    flat = [i for batch in batches for i in batch]
    if not batches or None in flat or len(flat) % epochs:
        return []
    problems, per_epoch = [], len(flat) // epochs
    if len(batches[0]) != min(batch_size, n):
        problems.append(f"the first batch holds {len(batches[0])} rows, batch_size is {batch_size}")
    if any(flat[e * per_epoch : (e + 1) * per_epoch] != list(range(per_epoch)) for e in range(epochs)):
        problems.append(
            f"the batches are shuffled: the first holds rows {', '.join(map(str, batches[0][:4]))}, ... of "
            f"trainer.train; the reference takes the rows in order (0 to {min(batch_size, n) - 1} first)"
        )
    short = n % batch_size
    if per_epoch < n:
        if short and per_epoch == n - short:
            problems.append(
                f"the short last batch ({short} rows) is dropped: each epoch trains on {per_epoch} of the "
                f"{n} rows (the reference keeps it as a smaller last step)"
            )
        else:
            problems.append(f"each epoch trains on {per_epoch} of the {n} rows")
    return problems


def check_train_loop_logs(ctx: Context) -> None:
    s = plan.TRAINING
    trainer = ctx.fresh_trainer()
    data = _data(trainer)
    initial = copy.deepcopy(_network(trainer))
    _attribute(trainer, "training_step", "Trainer")
    recorder = _BatchRecorder(trainer, data[0][0])
    what = f"Trainer.train_loop({s.epochs})"
    logs = _call(what, _attribute(trainer, "train_loop", "Trainer"), s.epochs)
    if not isinstance(logs, dict):
        raise Mistake(f"{what} returned {type(logs).__name__}, not the dict of logs (self.train_logs)")
    if set(logs) != set(LOG_KEYS):
        raise Mistake(f"{what} returned the keys {sorted(logs)}, expected {sorted(LOG_KEYS)}")
    lengths = {key: len(logs[key]) for key in LOG_KEYS}
    problems, offset = [], 0
    if set(lengths.values()) == {s.epochs}:
        problems.append(
            f"{what} logged {s.epochs} entries per key, the reference {s.epochs + 1}: no log entry "
            "before training (log_metrics must also run once before the first epoch)"
        )
        offset = 1
    elif set(lengths.values()) != {s.epochs + 1}:
        raise Mistake(
            f"{what} logged {lengths} entries, expected {s.epochs + 1} per key (one before training, "
            "one per epoch)"
        )
    expected = _Reference(initial, data).train_loop(s.epochs)
    for j in range(s.epochs + 1 - offset):
        key = next(
            (
                k
                for k in LOG_KEYS
                if not _close(float(logs[k][j]), expected[k][j + offset], plan.LOGS_TOLERANCE)
            ),
            None,
        )
        if key is None:
            continue
        causes = _batch_problems(recorder.batches, len(data[0][0]), s.batch_size, s.epochs)
        if not ctx.passed.get("training_step") and not causes:
            causes = ["the training steps differ from the reference's (see training_step)"]
        when = "before training" if j + offset == 0 else f"after epoch {j + offset}"
        problems.append(
            f"{key} {when} is {float(logs[key][j]):.6g}, the reference's {expected[key][j + offset]:.6g}"
            + (f": {'; '.join(causes)}" if causes else "")
        )
        break
    if problems:
        raise Mistake("; ".join(problems))


def check_equivariance(ctx: Context) -> None:
    trainer = ctx.trainer()
    _call("Trainer.test_equivariance()", _attribute(trainer, "test_equivariance", "Trainer"))
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


CHECKS: Dict[str, Callable[[Context], None]] = {
    "import": check_import,
    "structure.mlp": check_structure_mlp,
    "structure.cnn": check_structure_cnn,
    "activation_instances": check_activation_instances,
    "init": check_init,
    "forward": check_forward,
    "loss_and_mae": check_loss_and_mae,
    "training_step": check_training_step,
    "train_loop_logs": check_train_loop_logs,
    "equivariance": check_equivariance,
}


def _write(path: str, checks: list, running: str | None) -> None:
    files.write_json(path, {"checks": checks, "running": running})


def run_checks(result_path: str) -> list:
    """Every check in plan.CHECK_IDS order; the results so far are in `result_path` at all times."""
    ctx, results = Context(), []
    for check_id in plan.CHECK_IDS:
        _write(result_path, results, running=check_id)
        start = time.perf_counter()
        try:
            if check_id != "import" and ctx.module is None:
                raise Mistake(f"not run: {SOLUTION}.py did not import")
            CHECKS[check_id](ctx)
            passed, message = True, ""
        except Mistake as e:
            passed, message = False, str(e)
        except Exception as e:  # the grader's own failure: said as such, the other checks still run
            passed, message = False, f"the grader could not finish this check ({type(e).__name__}: {e})"
            traceback.print_exc()
        ctx.passed[check_id] = passed
        results.append({"id": check_id, "passed": passed, "message": message})
        print(
            f"[grade] {check_id}: {'passed' if passed else 'failed'} ({time.perf_counter() - start:.1f} s)",
            file=sys.stderr,
        )
    _write(result_path, results, running=None)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_compat.grade_checks", description=__doc__)
    parser.add_argument("--result", required=True, help="the JSON file to write the results to")
    args = parser.parse_args(argv)
    run_checks(os.path.abspath(args.result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
