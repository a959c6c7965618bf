"""The verdicts of `jaxtrainer grade`, decided in the grader's own process from the raw values a
submission's sandboxed run handed back (`jaxtrainer/grade/collector.py`).

The JAX engine is the reference. The student's networks come back as plain data (each position's
layer type, attributes and weights, in the order forward runs them); they are rebuilt here as
clean ``torch.nn`` modules (an activation the student wrote is recognised by what it computes),
loaded into the engine (``bridge.from_torch``), and run on the same inputs, which the grader drew
from a fresh seed. The first place where the student's values part from the reference's is reported
in the student's terms. A check that fails only because an earlier one did is "not graded" and
names that check. Where a training check fails, short PyTorch re-enactments of the usual mistakes
(SGD, an ignored lr, a loss of another kind, ...) name the likely cause: they explain, the engine
judges.

Nothing from the submission is trusted: every value is read through `Collected`, which checks its
type and shape; anything else raises `Malformed`, and the run is then "crashed".
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import traceback
import warnings
from typing import Dict, List, NamedTuple, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx

from jaxtrainer import models, presets
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.grade import plan, sandbox
from jaxtrainer.grade.collector import SECTIONS  # what the collector writes (stdlib-only module)
from jaxtrainer.registry import ACTIVATIONS

from . import bridge, grading, reference

RESULT_FILE = "result.json"
MAX_JSON_BYTES = 64 << 20
MAX_ARRAY_BYTES = 256 << 20
LOG_KEYS = ("train_loss", "test_loss", "train_mae", "test_mae")
_ATTRIBUTES = {  # what must match, per layer type (PyTorch's attribute names)
    "Linear": ("in_features", "out_features"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
    "MaxPool2d": ("kernel_size", "stride"),
    "AdaptiveMaxPool2d": ("output_size",),
    "Flatten": ("start_dim", "end_dim"),
}
_PAIRS = ("kernel_size", "stride", "padding", "output_size", "dilation")
_ACTIVATIONS = {cls: getattr(torch, name) for name, cls in ACTIVATIONS.items()}
_NAME_OF = ACTIVATIONS


GRADER_ERROR_LOG = "grader_error.log"  # in a submission's folder: the grader's own errors on it


class Malformed(Exception):
    """The run handed back something that is not what the collector writes."""


class Mistake(Exception):
    """A failed check; the message says where and how, in the student's terms."""


class NotGraded(Exception):
    """The check cannot be judged because an earlier one failed; the message names it."""


class Verdict(NamedTuple):
    """One check's outcome for one submission, as the report and grades.csv show it."""

    id: str
    result: str  # passed, failed, not graded, not applicable, grader error
    message: str = ""
    fraction: float = 1.0  # of its configurations that passed (partial credit where the rubric asks)


# -- reading what came back ----------------------------------------------------------------------


class Collected:
    """The result folder of one run, read strictly."""

    def __init__(self, folder: str):
        self.folder = folder
        path = os.path.join(folder, RESULT_FILE)
        if not os.path.lexists(path) and not os.path.islink(folder):  # the run wrote nothing
            self.sections, self.running = {}, "import"
            return
        if os.path.islink(folder) or not os.path.isdir(folder):
            raise Malformed("the result folder was replaced")
        try:
            data = json.loads(sandbox.read_untrusted(path, MAX_JSON_BYTES).decode("utf-8"))
        except sandbox.Untrusted as e:
            raise Malformed(str(e)) from None
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested too deep
            raise Malformed(f"{RESULT_FILE} is not readable JSON ({type(e).__name__})") from None
        self.sections = need(need(data, dict, "the result").get("sections", {}), dict, "sections")
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise Malformed(f"unknown sections {sorted(unknown)[:3]}")
        running = data.get("running")
        if running is not None and running not in SECTIONS:
            raise Malformed("an unknown running section")
        self.running = running

    def section(self, name: str) -> dict | None:
        """The section `name` the collector wrote, or None when the run never reached it."""
        value = self.sections.get(name)
        return None if value is None else need(value, dict, name)

    def array(self, ref, what: str, shape=None) -> np.ndarray:
        """The array `ref` ("@N": N.npy in the result folder) as float32, refused as Malformed when it is
        not a float32 array of `shape`."""
        if not (isinstance(ref, str) and ref.startswith("@") and ref[1:].isdigit() and len(ref) < 12):
            raise Malformed(f"{what} is not an array reference")
        path = os.path.join(self.folder, f"{int(ref[1:])}.npy")
        try:
            value = np.load(io.BytesIO(sandbox.read_untrusted(path, MAX_ARRAY_BYTES)), allow_pickle=False)
        except sandbox.Untrusted as e:
            raise Malformed(f"{what}: {e}") from None
        except (OSError, ValueError, EOFError) as e:
            raise Malformed(f"{what} is not a readable array ({type(e).__name__})") from None
        if value.dtype != np.float32:
            raise Malformed(f"{what} is {value.dtype}, not float32")
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise Malformed(f"{what} has shape {value.shape}, expected {tuple(shape)}")
        return value


def need(value, kind, what: str):
    """`value` when it is a `kind`, else Malformed: the run's JSON comes from hostile code and is read
    strictly."""
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise Malformed(f"{what} is a {type(value).__name__}")
    return value


# -- networks as plain data ------------------------------------------------------------------------


def _behaves_as(collected: Collected, entry: dict, what: str) -> str | None:
    """ReLU, Tanh or Sigmoid when the module's output on the probe is that function's."""
    if "probe" not in entry:
        return None
    probe = torch.tensor(plan.PROBE, dtype=torch.float32)
    got = torch.from_numpy(collected.array(entry["probe"], what, (len(plan.PROBE),)))
    for name, fn in _ACTIVATIONS.items():
        if torch.allclose(got, fn(probe), rtol=1e-5, atol=1e-6):
            return name
    return None


class Layer(NamedTuple):
    """One position of a student's network as the collector described it."""

    name: str  # the layer type as graded: a torch.nn name, or the student's class name
    attributes: dict
    parameters: Dict[str, np.ndarray]
    instance: int
    given: bool
    written_as: str  # the class as the student wrote it (a home-made ReLU shows here)


def _pair(value):
    if isinstance(value, int):
        return (value, value)
    if value == "valid":
        return (0, 0)
    return tuple(value) if isinstance(value, list) else value


def layers_of(collected: Collected, description: dict, what: str) -> List[Layer]:
    """The layers of a network `description`, each layer's arrays read from the result folder; a layer
    that is not a known torch.nn one is named by what it computes on a probe (`_behaves_as`)."""
    layers = []
    for i, entry in enumerate(need(description.get("layers", []), list, f"{what} layers")[:1000]):
        need(entry, dict, f"{what} layer {i}")
        cls = need(entry.get("type"), str, f"{what} layer {i} type")[:100]
        known = entry.get("torch") is True and (cls in _ATTRIBUTES or cls in _ACTIVATIONS)
        name = cls if known else (_behaves_as(collected, entry, f"{what} layer {i} probe") or cls)
        attributes = need(entry.get("attributes", {}), dict, f"{what} layer {i} attributes")
        parameters = {
            str(k)[:50]: collected.array(v, f"{what} layer {i} {k}")
            for k, v in need(entry.get("parameters", {}), dict, f"{what} layer {i} parameters").items()
        }
        instance = need(entry.get("instance"), int, f"{what} layer {i} instance")
        layers.append(Layer(name, attributes, parameters, instance, entry.get("given") is True, cls))
    return layers


def _signature(layer: Layer) -> Tuple[str, Dict]:
    attrs = {}
    for attr in _ATTRIBUTES.get(layer.name, ()):
        value = layer.attributes.get(attr, 0 if attr == "padding" else None)
        attrs[attr] = _pair(value) if attr in _PAIRS else value
    return layer.name, attrs


def _given(value):
    """An attribute as the constructor takes it (JSON lists back to tuples)."""
    return tuple(value) if isinstance(value, list) else value


def rebuild(layers: List[Layer], where: str, weights: bool = True) -> torch.nn.Sequential:
    """The student's network as a clean torch Sequential of the homework's layer types with the
    student's weights (or, `weights=False`, with those its constructors draw now); Mistake names a
    layer the homework's networks cannot hold."""
    modules = []
    for i, layer in enumerate(layers):
        a = {k: _given(v) for k, v in layer.attributes.items()}
        try:
            if layer.name == "Linear":
                # _given's values: ints here
                module = torch.nn.Linear(a["in_features"], a["out_features"])  # pyright: ignore[reportArgumentType]
            elif layer.name == "Conv2d":
                if _pair(layer.attributes.get("padding", 0)) != (0, 0) or _pair(
                    layer.attributes.get("dilation", 1)
                ) != (1, 1):
                    raise Mistake(f"{where}: position {i} is a Conv2d with padding or dilation")
                module = torch.nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"], a["stride"])  # pyright: ignore[reportArgumentType]
            elif layer.name == "MaxPool2d":
                module = torch.nn.MaxPool2d(a["kernel_size"], a["stride"])
            elif layer.name == "AdaptiveMaxPool2d":
                module = torch.nn.AdaptiveMaxPool2d(a["output_size"])
            elif layer.name == "Flatten":
                module = torch.nn.Flatten(a.get("start_dim", 1), a.get("end_dim", -1))  # pyright: ignore[reportArgumentType]
            elif layer.name in _ACTIVATIONS:
                module = getattr(torch.nn, layer.name)()
            else:
                raise Mistake(
                    f"{where}: position {i} is {layer.written_as}, which is none of the homework's layers "
                    "and computes none of ReLU, Tanh and Sigmoid"
                )
            if weights:
                expected = {k: tuple(v.shape) for k, v in module.named_parameters()}
                got = {k: tuple(v.shape) for k, v in layer.parameters.items()}
                if got != expected:
                    raise Mistake(
                        f"{where}: position {i} ({layer.name}) has parameters {got}, expected {expected}"
                    )
                with torch.no_grad():
                    for k, p in module.named_parameters():
                        p.copy_(torch.from_numpy(layer.parameters[k]))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise Mistake(f"{where}: position {i} ({layer.name}) cannot be rebuilt ({e})") from None
        modules.append(module)
    return torch.nn.Sequential(*modules)


def _engine(model: torch.nn.Module, where: str, depends: str):
    try:
        return bridge.from_torch(model)
    except ValueError as e:
        raise NotGraded(f"depends on {depends}: the reference cannot run {where} ({e})") from None


_apply = nnx.jit(lambda network, x: network(x))  # one program per network (eagerly: one per op)


def _reference_network(case: plan.Case) -> models.Sequential:
    """The engine builders' network for the case, abstract: its layers, no weights drawn."""
    c, h, w = case.input_shape
    activation = case.activation.lower()
    if case.network_type == "mlp":
        build = lambda: models.build_mlp(c * h * w, case.config, activation, rngs=nnx.Rngs(0))  # noqa: E731
    else:
        build = lambda: models.build_cnn(c, case.config, activation, rngs=nnx.Rngs(0))  # noqa: E731
    return nnx.eval_shape(build)


def _reference_signatures(case: plan.Case) -> List[Tuple[str, Dict]]:
    # the engine's Sequential, which to_torch takes as the facade's
    module = bridge.to_torch(_reference_network(case), copy_weights=False)  # pyright: ignore[reportArgumentType]
    return [
        (type(m).__name__, {a: (_pair(getattr(m, a)) if a in _PAIRS else getattr(m, a)) for a in attrs})
        for m in module
        for attrs in [_ATTRIBUTES.get(type(m).__name__, ())]
    ]


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
    if ours == "AdaptiveMaxPool2d" and theirs.startswith("Adaptive"):
        return " (the homework pools with AdaptiveMaxPool2d, the maximum, not the average)"
    return ""


def _attribute_hint(name: str, attr: str) -> str:
    hints = {
        ("Conv2d", "kernel_size"): " (are net_config.kernel_sizes used?)",
        ("Conv2d", "stride"): " (are net_config.strides used?)",
        ("Conv2d", "padding"): " (the reference's convolutions have no padding)",
        ("MaxPool2d", "kernel_size"): " (the reference pools with MaxPool2d(2))",
        ("AdaptiveMaxPool2d", "output_size"): " (the reference pools to (4, 4) after the last conv)",
        (
            "Linear",
            "out_features",
        ): " (the output layer has 1 feature; hidden sizes are net_config.dense_hiddens)",
    }
    return hints.get((name, attr), "")


def _structure_difference(student: list, reference: list) -> str | None:
    """The first position where the student's layer sequence parts from the reference's."""
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


# -- the checks -----------------------------------------------------------------------------------


class Judge:
    """Every verdict of one run, from its collected values and the request that produced them."""

    def __init__(self, collected: Collected, request: dict):
        self.c, self.request, self.verdicts = collected, request, {}
        self.tracebacks: Dict[str, str] = {}  # check id -> the grader's own error, met on this run
        self.variant = None
        self._builds = None

    # helpers
    def section(self, name: str, needs: str | None = None) -> dict:
        """The section `name`, or a Mistake: the run ended before it, or `needs` (the call it depends on)
        raised."""
        value = self.c.section(name)
        if value is None:
            raise Mistake(self._missing(name))
        if value.get("error") is not None and needs is not None:
            raise Mistake(f"{needs} raised {need(value['error'], str, 'error')}")
        return value

    def _missing(self, name: str) -> str:
        if self.c.running == name:
            return "the run ended during this check (see output.log)"
        return f"not run: the run ended during {self.c.running or 'an earlier step'}"

    def case(self, k: int) -> plan.Case:
        """The k-th configuration the builders are graded on (`plan.CASES`)."""
        return plan.CASES[k]

    def where(self, case: plan.Case) -> str:
        """How a case is named in a message: the builder and the configuration."""
        return f"create_{case.network_type} ({case.label})"

    def builds(self) -> list:
        """The collector's `builds` section: one entry per case the builders ran on."""
        if self._builds is None:
            self._builds = need(self.section("builds").get("cases"), list, "builds")
            if len(self._builds) > len(plan.CASES):
                raise Malformed("more builds than cases")
        return self._builds

    def build(self, k: int, seed_index: int = 0):
        """(description, layers, built_with_class) of case k under its seed_index-th seed."""
        case = self.case(k)
        builds = self.builds()
        if k >= len(builds):
            raise Mistake(self._missing("builds"))
        entry = need(builds[k], dict, "build")
        seeds = need(entry.get("seeds", {}), dict, "build seeds")
        seed = self.request["cases"][k]["seeds"][seed_index]
        if str(seed) not in seeds:
            error = entry.get("error")
            raise Mistake(
                f"Trainer.create_{case.network_type}(...) ({case.label}) raised "
                f"{need(error, str, 'error') if error else 'nothing, but the run ended'}"
                + _builder_hint(error or "")
            )
        description = need(seeds[str(seed)], dict, "description")
        if description.get("module") is not True:
            raise Mistake(
                f"{self.where(case)} returned a {str(description.get('type'))[:50]}, not a torch.nn.Module"
            )
        return (
            description,
            layers_of(self.c, description, self.where(case)),
            entry.get("built_with_class") is True,
        )

    # Q1
    def check_activation_function(self):
        """Q1: create_activation_function returns a fresh instance of the right torch.nn activation for
        each of the statement's names ("relu", "tanh", "sigmoid")."""
        found = need(self.section("activation").get("names"), dict, "activation names")
        problems = []
        for name in plan.ACTIVATION_NAMES:
            entry = found.get(name)
            call = f"create_activation_function({name!r})"
            if entry is None:
                problems.append(f"{call} was not run")
                continue
            need(entry, dict, "activation")
            if entry.get("error") and entry.get("kind") is None:
                problems.append(f"{call} raised {need(entry['error'], str, 'error')}")
                continue
            expected = _NAME_OF[name.lower()]
            if entry.get("kind") == "class":
                problems.append(
                    f"{call} returned the class {str(entry.get('returned'))[:50]}, not a module instance "
                    f"({str(entry.get('returned'))[:50]}())"
                )
                continue
            if entry.get("kind") != "module":
                problems.append(f"{call} returned a {str(entry.get('returned'))[:50]}, not a torch.nn.Module")
                continue
            if entry.get("error"):
                problems.append(
                    f"{call}: calling the module on a tensor raised {need(entry['error'], str, 'error')}"
                )
                continue
            behaves = _behaves_as(self.c, entry, "activation probe")
            if behaves != expected:
                problems.append(
                    f"{call} returned a {str(entry.get('returned'))[:50]} that computes "
                    f"{behaves or 'none of ReLU, Tanh and Sigmoid'}, not {expected}"
                )
        if problems:
            raise Mistake(
                "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            )

    # Q2, Q3
    def _structure(self, network_type: str):
        failures, cases, notes = (
            [],
            [k for k, c in enumerate(plan.CASES) if c.network_type == network_type],
            [],
        )
        for k in cases:
            case = self.case(k)
            try:
                description, layers, with_class = self.build(k)
            except Mistake as e:
                failures.append(str(e))
                continue
            if with_class and not self._activation_is_a_class():
                notes.append(
                    f"create_{network_type} fails when given a module instance, as the statement does, and "
                    "works when given a class: the builder calls the activation module it was given "
                    "(activation()); use copy.deepcopy(activation)"
                )
                failures.append(f"{self.where(case)}: {notes[-1]}")
                continue
            if description.get("forward_error"):
                failures.append(
                    f"the network of {self.where(case)} raised {str(description['forward_error'])[:300]}"
                )
                continue
            difference = _structure_difference([_signature(l) for l in layers], _reference_signatures(case))
            if difference is not None:
                failures.append(f"{self.where(case)}: {difference}")
        if failures:
            raise Mistake(_first_of(failures, len(cases)), 1 - len(failures) / len(cases))

    def _activation_is_a_class(self) -> bool:
        """The student's create_activation_function returns classes: then builders that call
        activation() are consistent with it, and the mistake is Q1's alone."""
        section = self.c.section("activation") or {}
        found = need(section.get("names", {}), dict, "activation names")
        return bool(found) and all(isinstance(e, dict) and e.get("kind") == "class" for e in found.values())

    def check_structure_mlp(self):
        """Q2: create_mlp's layers, their order and sizes are the reference's, for every configuration."""
        self._structure("mlp")

    def check_structure_cnn(self):
        """Q3: create_cnn's layers, their order and sizes are the reference's, for every configuration."""
        self._structure("cnn")

    def built(self, cases, seed_index: int = 0) -> list:
        """(k, description, layers) of the cases whose builder returned a network: one that raised
        is structure's failure, judged there; when none built, this check fails with the reason."""
        found, errors = [], []
        for k in cases:
            try:
                found.append((k, *self.build(k, seed_index)[:2]))
            except Mistake as e:
                errors.append(str(e))
        if not found:
            raise Mistake(f"no network could be built: {errors[0]}")
        return found

    def check_activation_instances(self):
        """Each activation position holds its own instance: a shared one is listed once by torch's
        children()."""
        for k, description, layers in self.built((0, 3)):
            case = self.case(k)
            at: Dict[int, List[int]] = {}
            for i, layer in enumerate(layers):
                if layer.name in _ACTIVATIONS:
                    at.setdefault(layer.instance, []).append(i)
            shared = [positions for positions in at.values() if len(positions) > 1]
            if shared:
                positions = shared[0]
                name = layers[positions[0]].name
                children = need(description.get("children"), int, "children")
                raise Mistake(
                    f"{self.where(case)}: positions {', '.join(map(str, positions))} hold one and the same "
                    f"{name} instance. torch's children() lists a module once, so list(model.children()) "
                    f"has {children} entries for the network's {len(layers)} positions; give each position "
                    "its own instance (copy.deepcopy(activation))"
                )

    def check_init(self):
        """The weights are PyTorch's default initialisation drawn in the layers' order under the seed: no
        weights initialised by hand, no seed reset."""
        problems, judged = [], 0
        for seed_index in (0, 1):
            for k, _, layers in self.built(plan.INIT_CASES, seed_index):
                case, seed = self.case(k), self.request["cases"][k]["seeds"][seed_index]
                try:
                    student = rebuild(layers, self.where(case))
                except Mistake:
                    continue  # a layer the homework's networks cannot hold: structure says which
                judged += 1
                torch.manual_seed(seed)  # the torch layers' constructors draw PyTorch's default init
                expected = rebuild_fresh(layers)
                for (key, value), (_, drawn) in zip(
                    student.state_dict().items(), expected.state_dict().items()
                ):
                    if not torch.equal(value, drawn):
                        gap = (value - drawn).abs().max().item()
                        problems.append(
                            f"{self.where(case)} under torch.manual_seed({seed}): {key} is not PyTorch's "
                            f"default initialisation drawn in the network's layer order (max difference "
                            f"{gap:.3g}): layers created in another order, the seed reset, or weights "
                            "initialised by hand?"
                        )
                        break
        if problems:
            raise Mistake(problems[0])
        if not judged:
            raise NotGraded("depends on structure: no network holds only the homework's layers")

    def check_forward(self):
        """With the same weights, each built network's output matches the reference network's within the
        tolerance."""
        failures, built = [], self.built(range(len(plan.CASES)))
        for k, description, layers in built:
            case = self.case(k)
            if description.get("forward_error"):
                failures.append(
                    f"the network of {self.where(case)} raised {str(description['forward_error'])[:300]}"
                )
                continue
            try:
                model = rebuild(layers, self.where(case))
            except Mistake as e:
                if len(built) == 1:
                    raise NotGraded(f"depends on structure.{case.network_type}: {e}") from None
                continue  # structure names the layer; the other networks are still run
            x = plan.inputs(self.request["seed"], f"forward{k}", (plan.FORWARD_BATCH, *case.input_shape))
            engine = _engine(model, self.where(case), f"structure.{case.network_type}")
            try:
                expected = np.asarray(_apply(engine, x))
            except Exception as e:  # the student's layer chain does not fit these images
                failures.append(
                    f"{self.where(case)}: its layers cannot take {case.input_shape} images ({str(e)[:200]})"
                )
                continue
            out = self.c.array(need(description.get("output"), str, "output"), "output")
            if out.shape != expected.shape:
                failures.append(
                    f"{self.where(case)}: the network returns shape {out.shape} for {len(x)} images, the "
                    f"reference {expected.shape}"
                )
            elif not np.all(np.abs(out - expected) <= plan.TOLERANCE * np.maximum(1.0, np.abs(expected))):
                failures.append(
                    f"{self.where(case)}: with the same weights, the output differs from the reference's "
                    f"by up to {np.abs(out - expected).max():.3g} (relative tolerance {plan.TOLERANCE:g})"
                )
        if failures:
            raise Mistake(_first_of(failures, len(built)), 1 - len(failures) / len(built))

    # the trainer
    def trainer_network(self, section: dict, what: str) -> torch.nn.Sequential:
        """The network a Trainer held in `section`, rebuilt as a torch module; not graded when its layers
        cannot be rebuilt."""
        description = section.get("network")
        if description is None:
            raise Mistake(f"{what}: trainer.network is not a torch.nn.Module")
        description = need(description, dict, "network")
        if description.get("module") is not True:
            raise Mistake(f"{what}: trainer.network is not a torch.nn.Module")
        try:
            return rebuild(layers_of(self.c, description, "trainer.network"), "trainer.network")
        except Mistake as e:
            raise NotGraded(f"depends on structure.mlp: {e}") from None

    def batch(self, name: str, n: int, shape) -> Tuple[np.ndarray, np.ndarray]:
        """The seeded batch `name` of `n` examples that the collector also drew."""
        assert self.variant is not None  # set with the request, before any batch
        return plan.batch(self.request["seed"], name, n, shape, self.variant)

    def image_shape(self) -> tuple:
        """The image shape the student's Trainer loaded, and the homework's year (variant) it implies."""
        trainer = self.section("trainer", needs=_trainer_call())
        shape = tuple(need(trainer.get("image_shape"), list, "image_shape"))
        if len(shape) != 3 or not all(isinstance(v, int) and 0 < v <= 512 for v in shape):
            raise Malformed("image_shape")
        variant = trainer.get("variant")
        if variant not in plan.VARIANTS:
            raise Malformed("variant")
        self.variant = variant
        return shape

    def _reference(self, network, X, y):
        return _Reference(copy.deepcopy(network), ((X, y), (X, y)))

    def check_loss_and_mae(self):
        """Q4: compute_loss_and_mae returns the batch's MSE and MAE; a wrong value is matched against the
        usual mistakes to say which."""
        shape = self.image_shape()
        section = self.section("loss", needs=_trainer_call())
        network = self.trainer_network(section, "compute_loss_and_mae")
        n = plan.LOSS_ROWS
        X, y = self.batch("loss", n, shape)
        what = f"Trainer.compute_loss_and_mae on {n} rows"
        got, grads = _two_floats(self.returned(section, what), what)
        loss, mae = self._expected(network, X, y)
        if _close(got[0], loss) and _close(got[1], mae):
            if not all(grads):
                raise Mistake(
                    f"{what}: the values are right, but "
                    + ("the loss" if not grads[0] else "the MAE")
                    + " is not a tensor that keeps the graph (computed under no_grad, detached or .item()?): "
                    "loss.backward() cannot run on it"
                )
            return
        cause = self._loss_cause(network, X, y, got)
        raise Mistake(
            f"{what} returned loss {got[0]:.6g} and mae {got[1]:.6g}, the reference's MSE and MAE "
            f"are {loss:.6g} and {mae:.6g}" + (f": {cause}" if cause else "")
        )

    def _expected(self, network, X, y) -> Tuple[float, float]:
        reference = self._reference(network, torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1)))
        loss, mae = reference.evaluate(torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1)))
        return float(loss), float(mae)

    def _loss_cause(self, network, X, y, got) -> str | None:
        with torch.no_grad():
            prediction = network(torch.from_numpy(X)).numpy().astype(np.float64)
        for cause, (loss, mae) in _loss_candidates(prediction, y, self.variant).items():
            if _close(got[0], loss) and _close(got[1], mae):
                return cause
        return None

    def returned(self, section: dict, what: str):
        """What a Trainer method returned, or a Mistake naming what it raised."""
        returned = need(section.get("returned"), dict, "returned")
        if "error" in returned:
            raise Mistake(f"{what} raised {need(returned['error'], str, 'error')}")
        return returned

    def _with_correct_loss(self, judge, section: str) -> None:
        """Judge a method that calls compute_loss_and_mae on the collector's `section`; when that fails
        and so did the student's compute_loss_and_mae, on the same calls made with the statement's in
        its place (`SECTION_correct_loss`), so that the loss's mistake costs once: a stub, an
        exception or a wrong value there no longer fails training_step and evaluate with it."""
        replayed = f"{section}_correct_loss"
        try:
            judge(section)
            return
        except (Mistake, NotGraded):
            if not self._failed("loss_and_mae") or self.c.section(replayed) is None:
                raise
        try:
            judge(replayed)
        except Mistake as e:
            message = f"{e.args[0]} (with a correct compute_loss_and_mae in place of its own)"
            raise Mistake(message, *e.args[1:]) from None
        raise NotGraded("depends on loss_and_mae: right when given a correct compute_loss_and_mae")

    def check_evaluate(self):
        """Q6: evaluate returns the mean MSE and MAE over the whole set, whether given tensors or a
        DataLoader."""
        self._with_correct_loss(self._judge_evaluate, "evaluate")

    def _judge_evaluate(self, name: str) -> None:
        shape = self.image_shape()
        section = self.section(name, needs=_trainer_call())
        network = self.trainer_network(section, "evaluate")
        n = plan.EVALUATE_ROWS
        X, y = self.batch("eval", n, shape)
        given = "a DataLoader" if section.get("called_with") == "loader" else "tensors"
        what = f"Trainer.evaluate on a set of {n} rows ({given}, batches of {plan.EVALUATE_BATCH})"
        got, _ = _two_floats(self.returned(section, what), what)
        loss, mae = self._expected(network, X, y)
        if _close(got[0], loss) and _close(got[1], mae):
            return
        cause = self._loss_cause(network, X, y, got)
        loss_failed = self.verdicts.get("loss_and_mae", Verdict("", "passed")).result == "failed"
        if cause and loss_failed:
            raise NotGraded(
                f"depends on loss_and_mae: evaluate gives the same values as compute_loss_and_mae ({cause})"
            )
        raise Mistake(
            f"{what} returned loss {got[0]:.6g} and mae {got[1]:.6g}, the mean MSE and MAE over the set "
            f"are {loss:.6g} and {mae:.6g}" + (f": {cause}" if cause else "")
        )

    def check_training_step(self):
        """Q5: training_step takes one Adam step at the Trainer's lr: the weights after each step match
        the reference's, and the returned loss is the batch's."""
        self._with_correct_loss(self._judge_training_step, "steps")

    def _judge_training_step(self, name: str) -> None:
        shape = self.image_shape()
        section = self.section(name, needs=_trainer_call())
        network = self.trainer_network(section, "training_step")
        s = plan.TRAINING
        steps = need(section.get("steps"), list, "steps")
        if not steps:
            raise Mistake(self._missing("steps"))
        batches = [
            tuple(torch.from_numpy(a) for a in self.batch(f"step{k}", s.step_batch, shape))
            for k in range(s.steps)
        ]
        first, student_weights = self._student_steps(steps)
        start = _weights(network)
        if [tuple(v.shape) for _, v in student_weights[0]] != [tuple(v.shape) for _, v in start]:
            raise Mistake("trainer.network changed shape during training_step")
        reference = _Reference(copy.deepcopy(network), ((batches[0][0], batches[0][1].reshape(-1, 1)),) * 2)
        reference_weights, first_loss = [], None
        for xb, yb in batches[: len(student_weights)]:
            loss_mae = reference.training_step(xb, yb.reshape(-1, 1))
            first_loss = first_loss or tuple(float(v) for v in loss_mae)
            reference_weights.append(_weights(reference.network))  # a torch module here  # pyright: ignore[reportArgumentType]
        problems = []
        optimizers = need(section.get("optimizers", []), list, "optimizers")
        settings = _optimizer_problem(optimizers, s.lr)
        for k, (weights, expected) in enumerate(zip(student_weights, reference_weights), start=1):
            if _relative_gap(weights, expected, start) > plan.STEP_TOLERANCE:
                gap, key = _largest_gap(weights, expected)
                cause = _likely_step_cause(network, batches, student_weights, s.lr) or settings
                if cause == _ADAM:  # PyTorch's own Adam, step for step: float32 rounding alone
                    break
                if cause in _FROM_THE_LOSS and self._failed("loss_and_mae"):
                    raise NotGraded(f"depends on loss_and_mae: {cause}, as its compute_loss_and_mae computes")
                problems.append(
                    f"after step {k} of {s.steps}, the weights differ from Adam's (lr={s.lr:g}) by up to "
                    f"{gap:.3g} (in {key}): "
                    + (cause or "they match neither SGD, RMSprop nor Adagrad either")
                )
                break
        if settings and not problems:
            problems.append(settings)
        # first_loss is set: student_weights holds a step (checked above)
        returned_problem = _returned_problem(self.c, first, *first_loss)  # pyright: ignore[reportOptionalIterable]
        if (
            returned_problem
            and not problems
            and self._failed("loss_and_mae")
            and self._returns_its_loss(first)
        ):
            raise NotGraded("depends on loss_and_mae: it returns what its compute_loss_and_mae computes")
        if returned_problem:
            problems.insert(0, returned_problem)
        if problems:
            raise Mistake("; ".join(problems))

    def _student_steps(self, steps: list) -> Tuple[dict, list]:
        """(the first step's record, the weights after each step) as the student's training_step
        left them; a step that raised is the mistake (or depends on loss_and_mae's detached loss)."""
        first = need(steps[0], dict, "step")
        if "error" in first:
            error = need(first["error"], str, "error")
            if "does not require grad" in error and self._failed("loss_and_mae"):
                raise NotGraded(
                    f"depends on loss_and_mae: loss.backward() fails on its detached loss ({error})"
                )
            raise Mistake(f"Trainer.training_step raised {error}")
        student_weights = []
        for step in steps:
            step = need(step, dict, "step")
            if "error" in step:
                raise Mistake(
                    f"Trainer.training_step raised {need(step['error'], str, 'error')} "
                    f"at step {len(student_weights) + 1}"
                )
            positions = need(step.get("weights"), list, "weights")
            student_weights.append(_flatten_weights(self.c, positions))
        return first, student_weights

    def _returns_its_loss(self, first: dict) -> bool:
        """The first step returned the values its compute_loss_and_mae's mistake gives."""
        cause = self.verdicts["loss_and_mae"].message.rpartition(": ")[2]
        try:
            got, _ = _two_floats(need(first.get("returned"), dict, "returned"), "")
        except Mistake:
            return False
        shape = self.image_shape()
        s = plan.TRAINING
        X, y = self.batch("step0", s.step_batch, shape)
        network = self.trainer_network(self.section("steps"), "training_step")
        with torch.no_grad():
            prediction = network(torch.from_numpy(X)).numpy().astype(np.float64)
        expected = _loss_candidates(prediction, y, self.variant).get(cause)
        return expected is not None and _close(got[0], expected[0]) and _close(got[1], expected[1])

    def check_train_loop_logs(self):
        """train_loop's logs have one entry before training and one per epoch, with the values a
        reference run gives."""
        section = self.c.section("train_loop")
        if section is not None and "not_applicable" in section:
            raise NotApplicable(str(section["not_applicable"])[:200])
        self.image_shape()
        if self.variant != "tensor":
            raise NotApplicable("the loader year's train_loop is given by the template")
        section = self.section("train_loop")
        if "network" not in section:  # the collector could not construct the Trainer
            section = self.section("train_loop", needs=_trainer_call())
        X, y, X_test, y_test = self._trainer_data()
        network = self.trainer_network(section, "train_loop")
        s = plan.TRAINING
        what = f"Trainer.train_loop({s.epochs})"
        logs = self._student_logs(section, what)
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
        expected = _Reference(copy.deepcopy(network), ((X, y), (X_test, y_test))).train_loop(s.epochs)
        in_torch = _torch_logs(network, ((X, y), (X_test, y_test)))

        def close(k: str, j: int) -> bool:  # the engine's logs, or PyTorch's own float32 rounding
            got = float(logs[k][j])
            return any(_close(got, ref[k][j + offset], plan.LOGS_TOLERANCE) for ref in (expected, in_torch))

        batches = [
            [i if isinstance(i, int) and i >= 0 else None for i in b]
            for b in need(section.get("batches", []), list, "batches")
        ]
        for j in range(s.epochs + 1 - offset):
            key = next(
                (k for k in LOG_KEYS if not close(k, j)),
                None,
            )
            if key is None:
                continue
            causes = _batch_problems(batches, len(X), s.batch_size, s.epochs)
            earlier = [c for c in ("loss_and_mae", "training_step", "evaluate") if self._failed(c)]
            if earlier and not causes and not problems:
                raise NotGraded(f"depends on {earlier[0]}: the logs follow from it")
            when = "before training" if j + offset == 0 else f"after epoch {j + offset}"
            problems.append(
                f"{key} {when} is {float(logs[key][j]):.6g}, the reference's {expected[key][j + offset]:.6g}"
                + (f": {'; '.join(causes)}" if causes else "")
            )
            break
        if problems:
            raise Mistake("; ".join(problems))

    def _trainer_data(self) -> tuple:
        """The student's Trainer's X, y, X_test, y_test, as torch tensors."""
        trainer = self.section("trainer")
        if "data" not in trainer:
            raise NotGraded("depends on the data: trainer.train and trainer.test are too large to hand back")
        arrays = [self.c.array(ref, "data") for ref in need(trainer["data"], list, "data")[:4]]
        if len(arrays) != 4:
            raise Malformed("data")
        return tuple(torch.from_numpy(a) for a in arrays)

    def _student_logs(self, section: dict, what: str) -> dict:
        """The logs train_loop returned, each a list of numbers under the homework's keys; an error
        it raised is the mistake (or depends on an earlier check that failed)."""
        if "error" in section:
            earlier = [c for c in ("loss_and_mae", "training_step") if self._failed(c)]
            if earlier:
                raise NotGraded(
                    f"depends on {earlier[0]}: {what} raised {need(section['error'], str, 'error')}"
                )
            raise Mistake(f"{what} raised {need(section['error'], str, 'error')}")
        if "logs" not in section:
            raise Mistake(
                f"{what} returned {str(section.get('returned'))[:50]}, not the dict of logs (self.train_logs)"
            )
        logs = need(section["logs"], dict, "logs")
        if set(logs) != set(LOG_KEYS):
            raise Mistake(f"{what} returned the keys {sorted(logs)[:8]}, expected {sorted(LOG_KEYS)}")
        for key in LOG_KEYS:
            values = need(logs[key], list, key)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise Malformed(f"logs {key}")
        return logs

    def check_equivariance(self):
        """test_equivariance draws the 2x2 figure (image, output, shift and rotation differences)."""
        section = self.c.section("equivariance")
        if section is not None and "not_applicable" in section:
            raise NotApplicable(str(section["not_applicable"])[:200])
        self.image_shape()
        if self.variant != "tensor":
            raise NotApplicable("the loader year has no equivariance question")
        section = self.section("equivariance", needs=_trainer_call())
        if section.get("missing"):
            raise Mistake("Trainer has no test_equivariance method")
        if section.get("error") is not None:
            raise Mistake(f"Trainer.test_equivariance() raised {need(section['error'], str, 'error')}")
        images = [self.c.array(r, "image") for r in need(section.get("images", []), list, "images")]
        returned = [self.c.array(r, "map") for r in need(section.get("returned", []), list, "returned")]
        drawn = [image for image in images if image.size > 1 and np.ptp(image) > 0]
        if len(images) >= 4 and len(drawn) >= 2:
            return
        if len(returned) >= 2:
            raise Mistake(
                f"Trainer.test_equivariance() computes {len(returned)} maps but draws nothing: the question "
                "asks for the 2x2 figure (the image, the output, and the shift and rotation differences)"
            )
        if images:
            raise Mistake(
                f"Trainer.test_equivariance() draws {len(images)} images ({len(drawn)} not blank), "
                "the figure has 4"
            )
        raise Mistake("Trainer.test_equivariance() draws nothing and returns nothing: it is still a stub")

    def _failed(self, check_id: str) -> bool:
        return self.verdicts.get(check_id, Verdict("", "passed")).result in ("failed", "not graded")

    # the import
    def check_import(self):
        """solution.py imports and defines Trainer and NetworkConfiguration; every other check needs it."""
        section = self.c.section("import")
        if section is None:
            raise Mistake(
                "importing solution.py " + ("did not finish" if self.c.running == "import" else "was not run")
            )
        if "error" in section:
            raise Mistake(f"importing solution.py raised {need(section['error'], str, 'error')}")
        names = need(section.get("names", []), list, "names")
        missing = [n for n in ("Trainer", "NetworkConfiguration") if n not in names]
        if missing:
            raise Mistake(f"solution.py defines no {' and no '.join(missing)}")

    def run(self) -> List[Verdict]:
        """Every check of `plan.CHECK_IDS` in order, each turned into a Verdict; nothing else runs when
        the import failed."""
        for check_id in plan.CHECK_IDS:
            if check_id != "import" and self.verdicts["import"].result != "passed":
                self.verdicts[check_id] = Verdict(
                    check_id, "failed", "not run: solution.py did not import", 0.0
                )
                continue
            method = getattr(self, "check_" + check_id.replace(".", "_"))
            try:
                method()
                verdict = Verdict(check_id, "passed")
            except Mistake as e:
                fraction = e.args[1] if len(e.args) > 1 else 0.0
                # Mistake(message, ...)
                verdict = Verdict(check_id, "failed", str(e.args[0]), max(0.0, min(1.0, fraction)))  # pyright: ignore[reportGeneralTypeIssues]
            except NotGraded as e:
                verdict = Verdict(check_id, "not graded", f"not graded: {e}")
            except NotApplicable as e:
                verdict = Verdict(check_id, "not applicable", f"not applicable: {e}")
            except Malformed:
                raise
            except Exception as e:  # noqa: BLE001 - a bug of the grader's: this check alone, the class goes on
                self.tracebacks[check_id] = traceback.format_exc()
                where = traceback.extract_tb(e.__traceback__)[-1]
                verdict = Verdict(
                    check_id,
                    "grader error",
                    f"the grader failed on this check ({type(e).__name__}: {str(e)[:200]} in "
                    f"{os.path.basename(where.filename)}, line {where.lineno}): a bug in jaxtrainer grade, "
                    f"not the student's; see {GRADER_ERROR_LOG} and grade again once it is fixed",
                    0.0,
                )
            self.verdicts[check_id] = verdict
        return [self.verdicts[c] for c in plan.CHECK_IDS]


class NotApplicable(Exception):
    """The check does not apply to this year of the homework."""


def _trainer_call() -> str:
    s = plan.TRAINING
    config = NetworkConfiguration(**{k: v for k, v in s.config._asdict().items()})
    default = NetworkConfiguration()
    fields = [f"{k}={v}" for k, v in config._asdict().items() if getattr(default, k) != v]
    return (
        f"Trainer({s.network_type!r}, NetworkConfiguration({', '.join(fields)}), lr={s.lr:g}, "
        f"batch_size={s.batch_size}, activation_name={s.activation!r})"
    )


def _builder_hint(error: str) -> str:
    if "forward() missing 1 required positional argument" in error:
        return (
            ": the builder calls the activation module it was given (activation()); it is already a "
            "module instance: use copy.deepcopy(activation) for each position"
        )
    return ""


def rebuild_fresh(layers: List[Layer]) -> torch.nn.Sequential:
    """The same layer types and sizes, constructed now: PyTorch's default initialisation drawn from
    torch's global generator in the network's layer order (instances shared in the student's network
    are constructed once, as there)."""
    made: Dict[int, torch.nn.Module] = {}
    modules = []
    for layer in layers:
        if layer.instance not in made:
            made[layer.instance] = rebuild([layer], "", weights=False)[0]
        modules.append(made[layer.instance])
    return torch.nn.Sequential(*modules)


def _torch_logs(network: torch.nn.Module, data) -> dict:
    """The homework's train_loop in plain PyTorch (torch_compat/reference.py) from the same weights:
    over 2 epochs, the engine's float32 rounding may part from PyTorch's by more than the logs'
    tolerance where some weights' gradients are rounding noise."""
    s = plan.TRAINING
    # the engine's NetworkConfiguration, the reference's by its fields
    trainer = reference.Trainer(s.network_type, s.config, s.lr, s.batch_size, dataset=data, progress=False)  # pyright: ignore[reportArgumentType]
    trainer.network = copy.deepcopy(network)
    trainer.optimizer = torch.optim.Adam(trainer.network.parameters(), lr=s.lr)
    return trainer.train_loop(s.epochs)


class _Reference(grading.Trainer):
    """The engine's Trainer on a given torch network and data, with the training settings; the
    grading flavour keeps the network a torch module, trained by the engine."""

    def __init__(self, network: torch.nn.Module, data):
        self._given = network
        s = plan.TRAINING
        try:
            super().__init__(
                s.network_type, s.config, s.lr, s.batch_size, s.activation, dataset=data, progress=False
            )
        except ValueError as e:
            raise Mistake(f"the reference cannot train on these data: {e}") from None

    def create_mlp(self, *args, **kwargs):
        return self._given

    create_cnn = create_mlp  # both give the student's network  # pyright: ignore[reportAssignmentType]


def _flatten_weights(collected: Collected, positions: list) -> List[Tuple[str, torch.Tensor]]:
    """[(key, tensor)] in state_dict order ('<position>.weight'), from the weights per position."""
    found = []
    for i, parameters in enumerate(positions[:1000]):
        for key, ref in need(parameters, dict, "weights").items():
            found.append((f"{i}.{str(key)[:50]}", torch.from_numpy(collected.array(ref, "weight"))))
    return found


def _two_floats(returned: dict, what: str) -> Tuple[Tuple[float, float], Tuple[bool, bool]]:
    """`(loss, mae)` as floats, and whether each keeps the graph; anything else is named."""
    kind = returned.get("kind")
    if kind == "single":
        item = need(returned.get("item"), dict, "item")
        if item.get("kind") == "tensor":
            raise Mistake(
                f"{what} returned one tensor of shape {tuple(item.get('shape', []))} (the loss alone?), "
                "not (loss, mae)"
            )
        raise Mistake(f"{what} returned {str(item.get('kind'))[:50]}, not the pair (loss, mae)")
    items = need(returned.get("items"), list, "items")
    length = need(returned.get("length"), int, "length")
    if length != 2:
        raise Mistake(f"{what} returned a {str(kind)[:20]} of {length}, not the pair (loss, mae)")
    values, grads = [], []
    for item in items[:2]:
        item = need(item, dict, "item")
        value = item.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Mistake(f"{what} returned a {str(item.get('kind'))[:50]}: loss and mae must be scalars")
        values.append(float(value))
        grads.append(item.get("grad") is True)
    return (values[0], values[1]), (grads[0], grads[1])


def _close(a: float, b: float, tolerance: float = plan.TOLERANCE) -> bool:
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def _loss_candidates(
    prediction: np.ndarray, y: np.ndarray, variant: str | None
) -> Dict[str, Tuple[float, float]]:
    """(loss, mae) as the usual mistakes compute them, from the same predictions."""
    error = prediction - y.reshape(prediction.shape)
    broadcast = prediction - y.reshape(-1)[None, :]  # (N, 1) against (N,): an N x N table
    mse, mae = float(np.mean(error**2)), float(np.mean(np.abs(error)))
    n = len(y)
    shape = "(B,)" if variant == "loader" else f"({n},)"
    return {
        "(mae, loss): the two are swapped": (mae, mse),
        "the loss is the RMSE (the square root of the MSE)": (float(np.sqrt(mse)), mae),
        "sums over the batch instead of averaging": (float(np.sum(error**2)), float(np.sum(np.abs(error)))),
        f"labels of shape {shape} broadcast against predictions (B, 1) to a B x B table; use y.view(-1, 1)": (
            float(np.mean(broadcast**2)),
            float(np.mean(np.abs(broadcast))),
        ),
    }


def _weights(network: torch.nn.Module) -> List[Tuple[str, torch.Tensor]]:
    return [(key, value.detach().clone()) for key, value in network.state_dict().items()]


def _largest_gap(weights, expected) -> Tuple[float, str]:
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


# torch.optim.Adam itself, re-enacted: where the engine's float32 rounding parts from PyTorch's by more
# than the tolerance (weights whose gradient is rounding noise move by ~lr either way), the steps
# that match PyTorch's own Adam exactly are right.
_ADAM = "torch.optim.Adam on the MSE"


def _optimizer_mistakes(lr: float):
    """(cause, optimizer factory, loss, zero_grad each step) for the usual training-step mistakes."""
    default = presets.DEFAULT_LR
    mse = lambda p, y: F.mse_loss(p, y.view_as(p))  # noqa: E731
    mae = lambda p, y: F.l1_loss(p, y.view_as(p))  # noqa: E731
    adam = lambda p: torch.optim.Adam(p, lr=lr)  # noqa: E731
    return (
        (_ADAM, adam, mse, True),
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
        ("the gradients accumulate across steps: optimizer.zero_grad() is not called", adam, mse, False),
        ("the steps minimise the MAE, not the MSE", adam, mae, True),
        ("the steps minimise the RMSE, not the MSE", adam, lambda p, y: torch.sqrt(mse(p, y)), True),
        (
            "the steps minimise the sum of squared errors, not their mean",
            adam,
            lambda p, y: F.mse_loss(p, y.view_as(p), reduction="sum"),
            True,
        ),
        (
            "two backward calls: the gradient is that of MSE + MAE (call backward() on the MSE only)",
            adam,
            lambda p, y: mse(p, y) + mae(p, y),
            True,
        ),
        (
            "the steps minimise a broadcast MSE: labels (B,) against predictions (B, 1); use y.view(-1, 1)",
            adam,
            lambda p, y: F.mse_loss(p, y.reshape(-1)) if y.dim() == 1 else mse(p, y),
            True,
        ),
    )


# Causes that are compute_loss_and_mae's mistake showing through the steps (it costs Q4 once).
_FROM_THE_LOSS = (
    "the steps minimise the MAE, not the MSE",
    "the steps minimise the RMSE, not the MSE",
    "the steps minimise the sum of squared errors, not their mean",
    "the steps minimise a broadcast MSE: labels (B,) against predictions (B, 1); use y.view(-1, 1)",
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
            with _quiet():
                loss_fn(network(xb), yb).backward()
            optimizer.step()
            if _relative_gap(_weights(network), expected, start) > plan.STEP_TOLERANCE:
                break
        else:
            return cause
    return None


@contextlib.contextmanager
def _quiet():
    """Re-enacting the broadcast mistake makes torch warn about the shapes: that is the point."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _optimizer_problem(optimizers: list, lr: float) -> str | None:
    """The settings of the trainer's Adam-family optimizer that make it other than Adam(lr): a few
    steps cannot tell AdamW's decay (lr * 0.01 of each weight per step), fifty epochs can."""
    if len(optimizers) != 1:
        return None
    found = need(optimizers[0], dict, "optimizer")
    if found.get("type") not in ("Adam", "AdamW"):
        return None
    name = str(found.get("attribute"))[:50]
    group = need(found.get("settings", {}), dict, "settings")
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr).defaults
    keys = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    plain_adam = {k: (list(v) if isinstance(v, tuple) else v) for k, v in adam.items()}
    differ = [
        f"{key}={group.get(key)!r} (Adam's: {adam[key]!r})"
        for key in keys
        if group.get(key) != plain_adam[key]
    ]
    if not differ:
        return None
    return (
        f"trainer.{name} is {found.get('type')} with {', '.join(differ)}; the homework's is "
        f"torch.optim.Adam(network.parameters(), lr={lr:g})"
    )


def _returned_problem(collected: Collected, first: dict, loss: float, mae: float) -> str | None:
    what = "Trainer.training_step"
    try:
        got, _ = _two_floats(need(first.get("returned"), dict, "returned"), what)
    except Mistake as e:
        return str(e)
    if _close(got[0], loss) and _close(got[1], mae):
        return None
    if _close(got[0], mae) and _close(got[1], loss):
        return f"{what} returned (mae, loss): the two are swapped"
    return (
        f"{what} returned loss {got[0]:.6g} and mae {got[1]:.6g} for the first batch, "
        f"whose MSE and MAE before the update are {loss:.6g} and {mae:.6g}"
    )


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


def judge(folder: str, request: dict) -> Tuple[List[Verdict], str | None, str | None, Dict[str, str]]:
    """(verdicts, None, the year, {check id: traceback} of the grader's own errors) of one run; when
    what it handed back is malformed, every check fails with the reason (the second item): the run
    then counts as crashed."""
    judge = None
    try:
        judge = Judge(Collected(folder), request)
        return judge.run(), None, judge.variant, judge.tracebacks
    except Malformed as e:
        reason = f"the run handed back values the grader cannot read ({e})"
        verdicts = [Verdict(c, "failed", reason, 0.0) for c in plan.CHECK_IDS]
        if judge is not None and judge.verdicts.get("import", Verdict("", "")).result == "passed":
            verdicts[0] = judge.verdicts["import"]
        return verdicts, reason, None, {}
