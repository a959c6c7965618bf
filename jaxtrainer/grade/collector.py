"""Runs ONE student's solution.py inside the sandbox and hands back raw values; it judges nothing.

This file is standalone on purpose: the sandbox mounts it read-only at /grader, where neither
jaxtrainer nor the grader's checks can be imported (the project is not on the sandbox's path). It
reads the grader's request (fresh seeds and the calls to make), calls the student's code, and writes
what came back: the networks as plain data (each position's layer type, attributes and weights, in
the order forward runs them), outputs, losses, weights after each step, logs. The grader parses
that strictly and compares it with the reference it computes itself, so nothing written here can
raise a score: a forged value is just a wrong value.

    python -I /grader/collector.py REQUEST.json OUT_FOLDER

OUT_FOLDER/result.json is rewritten after every section (a run killed at its timeout still hands
back what it finished); arrays go to OUT_FOLDER/<n>.npy and are named "@<n>" in the JSON.
"""

import importlib
import inspect
import json
import math
import os
import sys
import time
import traceback

SOLUTION = "solution"
KNOWN = ("Linear", "Conv2d", "MaxPool2d", "AdaptiveMaxPool2d", "Flatten", "ReLU", "Tanh", "Sigmoid")
ATTRIBUTES = (
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_size",
    "start_dim",
    "end_dim",
)
MAX_DATA_VALUES = 16_000_000  # trainer.train/test handed back whole up to 64 MB of float32


class Out:
    """The result folder: JSON sections and numbered arrays."""

    def __init__(self, folder):
        import numpy as np

        self.np, self.folder, self.count, self.sections = np, folder, 0, {}
        os.makedirs(folder, exist_ok=True)

    def array(self, value):
        """`value` as float32 to the next <n>.npy; returns the "@<n>" that names it in the JSON."""
        np = self.np
        value = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        self.count += 1
        np.save(os.path.join(self.folder, f"{self.count}.npy"), value, allow_pickle=False)
        return f"@{self.count}"

    def save(self, running):
        """result.json rewritten whole, by rename; `running`: the section under way (None: all done)."""
        tmp = os.path.join(self.folder, "result.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"sections": self.sections, "running": running}, f)
        os.replace(tmp, os.path.join(self.folder, "result.json"))


def error_text(e):
    """`TypeError: ... (solution.py, line 12)`: the error and the last solution.py line it went through."""
    line = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        if os.path.basename(frame.f_code.co_filename) == f"{SOLUTION}.py":
            line = lineno
    lines = str(e).strip().splitlines()
    text = f"{type(e).__name__}{': ' + lines[0][:500] if lines else ''}"
    return text + (f" ({SOLUTION}.py, line {line})" if line is not None else "")


def attempt(fn, *args, **kwargs):
    """(value, None) or (None, the error's text): anything the student's code raises, exit() too."""
    try:
        return fn(*args, **kwargs), None
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the student's too
        return None, error_text(e)


def statement_loss_and_mae(self, X, y):
    """The statement's compute_loss_and_mae: the MSE and MAE of self.network on a batch, whatever the
    labels' shape ((B,), (B, 1), int64 in the loader year)."""
    import torch.nn.functional as F

    prediction = self.network(X)
    y = y.reshape(prediction.shape).to(prediction.dtype)
    return F.mse_loss(prediction, y), F.l1_loss(prediction, y)


def plain(value):
    """A layer attribute as JSON: ints, strings, tuples of them; anything else by its repr."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, float, type(None))) and not isinstance(v, bool) for v in value
    ):
        return [v if not isinstance(v, float) or math.isfinite(v) else repr(v) for v in value]
    return repr(value)[:200]


def scalar(value):
    """What a student returned where a loss is expected: its kind, and the float when there is one."""
    import torch

    if isinstance(value, torch.Tensor):
        info = {
            "kind": "tensor",
            "shape": list(value.shape),
            "grad": bool(value.requires_grad and value.grad_fn is not None),
        }
        if value.numel() == 1:
            info["value"] = float(value.detach().double().reshape(()))
        return info
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"kind": "number", "value": float(value)}
    return {"kind": type(value).__name__}


def pair(value):
    """(loss, mae) as the student returned them."""
    if isinstance(value, (tuple, list)):
        return {"kind": type(value).__name__, "items": [scalar(v) for v in value[:4]], "length": len(value)}
    return {"kind": "single", "item": scalar(value)}


class Network:
    """A module as plain data: the leaf modules in the order forward calls them (a module called at
    two positions is two positions), each with its type, attributes, weights and instance number."""

    def __init__(self, out, module, given=None):
        self.out, self.module, self.given = out, module, given

    def describe(self, x=None, probe=None):
        """The module as plain data; with `x`, its output too and the layers in the order forward calls
        them (else in registration order). `probe` goes to `layer`."""
        import torch

        module = self.module
        info = {"type": type(module).__name__, "sequential": isinstance(module, torch.nn.Sequential)}
        if not isinstance(module, torch.nn.Module):
            info["module"] = False
            return info
        info["module"] = True
        info["children"] = len(list(module.children()))
        leaves = [m for m in module.modules() if not list(m.children())]
        order = []
        hooks = [
            leaf.register_forward_hook(lambda m, inp, outp: order.append(m) if len(order) < 1000 else None)
            for leaf in leaves
        ]
        if x is not None:
            with torch.no_grad():
                output, error = attempt(module, torch.from_numpy(x))
            if error is not None:
                info["forward_error"] = error
            elif isinstance(output, torch.Tensor):
                info["output"] = self.out.array(output.detach().float().numpy())
            else:
                info["forward_error"] = f"forward returned a {type(output).__name__}, not a tensor"
        for hook in hooks:
            hook.remove()
        info["order"] = "forward" if order else "registration"
        positions = order or leaves
        numbers = {}
        info["layers"] = [self.layer(m, numbers.setdefault(id(m), len(numbers)), probe) for m in positions]
        return info

    def layer(self, m, instance, probe):
        """One position: type, attributes, parameters; a parameter-free layer that is not one of torch.nn's
        KNOWN ones is called on `probe`, so that what it computes can be judged."""
        import torch

        cls = type(m)
        entry = {
            "type": cls.__name__,
            "torch": cls.__module__.startswith("torch.nn"),
            "instance": instance,
            "given": m is self.given,
            "attributes": {a: plain(getattr(m, a)) for a in ATTRIBUTES if hasattr(m, a)},
            "parameters": {
                name: self.out.array(p.detach().float().numpy())
                for name, p in m.named_parameters(recurse=False)
            },
        }
        if not entry["parameters"] and not (entry["torch"] and cls.__name__ in KNOWN) and probe is not None:
            with torch.no_grad():
                value, error = attempt(m, torch.from_numpy(probe.copy()))
            if error is None and isinstance(value, torch.Tensor) and tuple(value.shape) == probe.shape:
                entry["probe"] = self.out.array(value.float().numpy())
        return entry


def weights(out, module):
    """Each position's parameters, in forward order, from a description."""
    return [layer["parameters"] for layer in Network(out, module).describe()["layers"]]


class Collector:
    """One request's sections: each `section_<name>` returns JSON-able raw values, with what the
    student's code raised as text, never raised on."""

    def __init__(self, request, out):
        import numpy as np

        self.request, self.out, self.np = request, out, np
        self.module = None
        self.variant = request.get("variant", "auto")

    def inputs(self, key, shape, low=-1.0, high=1.0):
        """The grader's inputs for one call: drawn from its fresh seed, so it can draw them again."""
        seed = self.request["seed"] + sum(map(ord, key))
        return self.np.random.default_rng(seed).uniform(low, high, shape).astype(self.np.float32)

    # -- sections ------------------------------------------------------------------------------

    def section_import(self):
        """solution.py from the working folder; which of Trainer and NetworkConfiguration it defines."""
        sys.path.insert(0, os.getcwd())
        module, error = attempt(importlib.import_module, SOLUTION)
        if error is not None:
            return {"error": error}
        self.module = module
        return {"names": sorted(n for n in ("Trainer", "NetworkConfiguration") if hasattr(module, n))}

    def config(self, fields):
        """The student's own NetworkConfiguration from the request's `fields` (lists as tuples)."""
        return self.module.NetworkConfiguration(**{k: tuple(v) for k, v in fields.items()})

    def section_activation(self):
        """Each requested name through `create_activation_function` (a class it returns is instantiated)
        and its output on the probe; and the error a bad name raises (None: it raised none)."""
        import torch

        probe = self.np.asarray(self.request["probe"], dtype=self.np.float32)
        found = {}
        for name in self.request["activation_names"]:
            value, error = attempt(self.module.Trainer.create_activation_function, name)
            if error is not None:
                found[name] = {"error": error}
                continue
            entry = {"returned": type(value).__name__}
            if isinstance(value, type):
                entry["kind"] = "class"
                entry["returned"] = value.__name__
                value, error = attempt(value)
                if error is not None:
                    entry["error"] = error
                    found[name] = entry
                    continue
            else:
                entry["kind"] = "module" if isinstance(value, torch.nn.Module) else "other"
            with torch.no_grad():
                output, error = attempt(value, torch.from_numpy(probe.copy()))
            if error is not None:
                entry["error"] = error
            elif isinstance(output, torch.Tensor) and tuple(output.shape) == probe.shape:
                entry["probe"] = self.out.array(output.float().numpy())
            else:
                entry["error"] = (
                    f"calling it on a tensor of shape {probe.shape} returned {type(output).__name__}"
                )
            found[name] = entry
        _, bad = attempt(self.module.Trainer.create_activation_function, self.request["bad_activation"])
        return {"names": found, "bad_name_error": bad}

    def build(self, case, seed, activation_class):
        """The student's network for a case (or the error), under torch.manual_seed(seed)."""
        import torch

        c, h, w = case["input_shape"]
        builder = getattr(self.module.Trainer, f"create_{case['network_type']}")
        first = c * h * w if case["network_type"] == "mlp" else c
        config, error = attempt(self.config, case["config"])
        if error is not None:
            return None, None, f"NetworkConfiguration(...) raised {error}"
        given = getattr(torch.nn, case["activation"])
        torch.manual_seed(seed)
        activation = given() if not activation_class else given
        model, error = attempt(builder, first, config, activation)
        return model, (activation if not activation_class else None), error

    def section_builds(self):
        """Each case's network built and described under each of its seeds; a builder that refuses an
        activation instance is tried again with the class."""
        np = self.np
        probe = np.asarray(self.request["probe"], dtype=np.float32)
        results = []
        for k, case in enumerate(self.request["cases"]):
            entry = {"seeds": {}}
            for seed in case["seeds"]:
                model, given, error = self.build(case, seed, activation_class=False)
                if error is not None:
                    entry["error"] = error
                    model, given, class_error = self.build(case, seed, activation_class=True)
                    if class_error is not None:
                        break
                    entry["built_with_class"] = True
                x = self.inputs(f"forward{k}", (self.request["forward_batch"], *case["input_shape"]))
                entry["seeds"][str(seed)] = Network(self.out, model, given).describe(x, probe)
            results.append(entry)
        return {"cases": results}

    def trainer(self, correct_loss=False):
        """The student's Trainer with the training settings, its builders replaced by a plain
        network (Flatten, Linear and ReLU of torch.nn) and create_activation_function by the
        statement's: Q4-Q6 are judged whatever Q1-Q3 got wrong (a TODO stub raising in
        create_activation_function would fail the Trainer's __init__). `correct_loss`: its
        compute_loss_and_mae replaced too, by the statement's."""
        import torch

        s = self.request["training"]

        def network(first, *args, **kwargs):
            torch.manual_seed(s["network_seed"])
            layers, width = [torch.nn.Flatten()], first
            for hidden in s["config"]["dense_hiddens"]:
                layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
                width = hidden
            return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))

        def activation(name):
            return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[name.lower()]()

        builders = {"create_mlp": staticmethod(network), "create_cnn": staticmethod(network)}
        builders["create_activation_function"] = staticmethod(activation)
        if correct_loss:
            builders["compute_loss_and_mae"] = statement_loss_and_mae
        trainer_class = type(self.module.Trainer.__name__, (self.module.Trainer,), builders)
        config = self.config(s["config"])
        return trainer_class(s["network_type"], config, s["lr"], s["batch_size"], s["activation"])

    def data(self, trainer):
        """The trainer's data: the tensor year's whole tensors, or the loader year's first batch."""
        import torch

        train = getattr(trainer, "train", None)
        if isinstance(train, (tuple, list)) and len(train) == 2 and isinstance(train[0], torch.Tensor):
            return "tensor", tuple(train[0].shape[1:])
        batch = next(iter(train))
        return "loader", tuple(batch[0].shape[1:])

    def section_trainer(self):
        """The Trainer built; settles the variant and image shape the later sections need (the tensor
        year's data too, up to MAX_DATA_VALUES)."""
        import torch

        trainer, error = attempt(self.trainer)
        if error is not None:
            return {"error": error}
        found, error = attempt(self.data, trainer)
        if error is not None:
            return {"error": f"reading trainer.train: {error}"}
        self.variant, self.image_shape = found if self.variant == "auto" else (self.variant, found[1])
        info = {"variant": self.variant, "image_shape": list(self.image_shape)}
        if self.variant == "tensor":
            (X, y), (Xt, yt) = trainer.train, trainer.test
            size = sum(int(a.numel()) for a in (X, y, Xt, yt))
            if size <= MAX_DATA_VALUES:
                info["data"] = [
                    self.out.array(torch.as_tensor(a).detach().float().numpy()) for a in (X, y, Xt, yt)
                ]
        return info

    def network_of(self, trainer):
        """`trainer.network` described with its output on fresh inputs; None when it is not a torch module."""
        import torch

        network = getattr(trainer, "network", None)
        if not isinstance(network, torch.nn.Module):
            return None
        x = self.inputs("trainer-forward", (2, *self.image_shape))
        return Network(self.out, network).describe(x)

    def optimizers(self, trainer):
        """Each torch optimizer among the trainer's attributes: name, type, first param group's settings."""
        import torch

        found = []
        for name, value in vars(trainer).items():
            if isinstance(value, torch.optim.Optimizer):
                group = value.param_groups[0]
                settings = {k: plain(v) for k, v in group.items() if k != "params"}
                found.append({"attribute": name, "type": type(value).__name__, "settings": settings})
        return found

    def batch(self, name, n):
        """The rows and targets of one call, as plan.batch draws them (this file cannot import it):
        the loader year's images lean on a pattern in proportion to their label, so that the
        predictions follow the labels and a (B,) against (B, 1) broadcast shows in the loss."""
        np, seed = self.np, self.request["seed"]
        X = self.inputs(f"{name}-x", (n, *self.image_shape))
        if self.variant == "tensor":
            return X, self.inputs(f"{name}-y", (n, 1), -2.0, 2.0)
        y = np.random.default_rng(seed + sum(map(ord, f"{name}-y"))).integers(0, 10, n)
        pattern = self.inputs("pattern", self.image_shape)
        lean = ((y - 4.5) / 4.5).astype(np.float32).reshape(n, 1, 1, 1)
        return (0.1 * X + lean * pattern).astype(np.float32), y

    def section_loss(self):
        """`compute_loss_and_mae` on one drawn batch, as returned."""
        import torch

        trainer, error = attempt(self.trainer)
        if error is not None:
            return {"error": error}
        n = self.request["loss_rows"]
        X, y = self.batch("loss", n)
        info = {"network": self.network_of(trainer)}
        value, error = attempt(trainer.compute_loss_and_mae, torch.from_numpy(X), torch.from_numpy(y))
        info["returned"] = {"error": error} if error is not None else pair(value)
        return info

    def section_evaluate(self, correct_loss=False):
        """`evaluate` on drawn rows: a DataLoader if it takes one argument (the loader year), else tensors."""
        import torch

        trainer, error = attempt(self.trainer, correct_loss)
        if error is not None:
            return {"error": error}
        n, batch = self.request["evaluate_rows"], self.request["evaluate_batch"]
        X, y = self.batch("eval", n)
        info = {"network": self.network_of(trainer)}
        evaluate = trainer.evaluate
        try:
            takes = len(inspect.signature(evaluate).parameters)
        except (TypeError, ValueError):
            takes = 2
        if takes == 1:  # evaluate(loader)
            dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
            args = (torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False),)
            info["called_with"] = "loader"
        else:
            args = (torch.from_numpy(X), torch.from_numpy(y))
            info["called_with"] = "tensors"
        value, error = attempt(evaluate, *args)
        info["returned"] = {"error": error} if error is not None else pair(value)
        return info

    def section_steps(self, correct_loss=False):
        """`training_step` on drawn batches, the weights after each, and the optimizers before and after."""
        import torch

        trainer, error = attempt(self.trainer, correct_loss)
        if error is not None:
            return {"error": error}
        s = self.request["training"]
        info = {"network": self.network_of(trainer), "optimizers": self.optimizers(trainer), "steps": []}
        network = trainer.network
        for k in range(s["steps"]):
            X, y = self.batch(f"step{k}", s["step_batch"])
            value, error = attempt(trainer.training_step, torch.from_numpy(X), torch.from_numpy(y))
            if error is not None:
                info["steps"].append({"error": error})
                break
            info["steps"].append({"returned": pair(value), "weights": weights(self.out, network)})
        info["optimizers_after"] = self.optimizers(trainer)
        return info

    def section_evaluate_correct_loss(self):
        """`evaluate` again, calling the statement's compute_loss_and_mae instead of the student's: what
        evaluate is judged by when the student's compute_loss_and_mae is wrong (a mistake costs once)."""
        return self.section_evaluate(correct_loss=True)

    def section_steps_correct_loss(self):
        """`training_step` again, likewise."""
        return self.section_steps(correct_loss=True)

    def section_train_loop(self):
        """The tensor year's `train_loop`: its logs, and each step's batch as indices into trainer.train
        (-1: a row not in it)."""
        import torch

        if self.variant != "tensor":
            return {"not_applicable": "the loader year's train_loop is given by the template"}
        trainer, error = attempt(self.trainer)
        if error is not None:
            return {"error": error}
        s = self.request["training"]
        info = {"network": self.network_of(trainer)}
        X = trainer.train[0]
        index = {}
        for i, row in enumerate(torch.as_tensor(X).detach().float().reshape(len(X), -1).numpy()):
            index.setdefault(row.tobytes(), i)
        batches, step = [], trainer.training_step

        def recorder(X_batch, y_batch):
            rows = torch.as_tensor(X_batch).detach().float().reshape(len(X_batch), -1).numpy()
            if len(batches) < 100_000:
                batches.append([index.get(r.tobytes(), -1) for r in rows])
            return step(X_batch, y_batch)

        trainer.training_step = recorder
        logs, error = attempt(trainer.train_loop, s["epochs"])
        info["batches"] = batches
        if error is not None:
            info["error"] = error
        elif not isinstance(logs, dict):
            info["returned"] = type(logs).__name__
        else:
            info["logs"] = {
                str(k)[:100]: [float(v) for v in values[:1000]] if isinstance(values, list) else None
                for k, values in list(logs.items())[:20]
            }
        return info

    def section_equivariance(self):
        """The tensor year's `test_equivariance`: the images it shows (imshow) and the arrays it returns."""
        if self.variant != "tensor":
            return {"not_applicable": "the loader year has no equivariance question"}
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.axes
        import matplotlib.pyplot as plt

        trainer, error = attempt(self.trainer)
        if error is not None:
            return {"error": error}
        method = getattr(trainer, "test_equivariance", None)
        if method is None:
            return {"missing": True}
        plt.close("all")
        drawn, imshow = [], matplotlib.axes.Axes.imshow

        def recording(axes, data, *args, **kwargs):  # the figure may be closed before we look
            array, _ = attempt(lambda: self.np.asarray(getattr(data, "detach", lambda: data)(), dtype=float))
            if array is not None and len(drawn) < 16:
                drawn.append(self.out.array(array))
            return imshow(axes, data, *args, **kwargs)

        matplotlib.axes.Axes.imshow = recording
        try:
            value, error = attempt(method)
        finally:
            matplotlib.axes.Axes.imshow = imshow
        images = drawn
        returned = []
        if isinstance(value, (tuple, list)):
            for item in value[:8]:
                array, _ = attempt(
                    lambda v=item: self.np.asarray(getattr(v, "detach", lambda: v)(), dtype=float)
                )
                if array is not None and array.size:
                    returned.append(self.out.array(array))
        plt.close("all")
        return {"error": error, "images": images[:16], "returned": returned}


def cpu_only():
    """Solutions hard-code `.to("cuda")`, `.to("mps")` or `.cuda()` (a notebook habit, not the
    homework's subject): the sandbox has no GPU, so such a move stays on the CPU, said once in the log."""
    import torch

    said = []

    def cpu(device):
        if isinstance(device, (str, torch.device)):
            try:
                kind = torch.device(device).type
            except (RuntimeError, ValueError):
                return device
            if kind in ("cuda", "mps", "xpu"):
                if not said:
                    said.append(kind)
                    print(
                        f"[grade] a move to {kind!r} runs on the CPU (the grader has no GPU)", file=sys.stderr
                    )
                return torch.device("cpu")
        return device

    def moving(method):
        def to(self, *args, **kwargs):
            if "device" in kwargs:
                kwargs["device"] = cpu(kwargs["device"])
            return method(self, *(cpu(a) for a in args), **kwargs)

        return to

    torch.Tensor.to = moving(torch.Tensor.to)
    torch.nn.Module.to = moving(torch.nn.Module.to)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self


SECTIONS = (
    "import",
    "activation",
    "builds",
    "trainer",
    "loss",
    "evaluate",
    "steps",
    "train_loop",
    "equivariance",
    "evaluate_correct_loss",
    "steps_correct_loss",
)


def main(argv):
    """`collector.py REQUEST.json OUT_FOLDER`: the sections in order, result.json saved before each;
    stops at a failed import, or after a failed trainer section. Returns 0."""
    with open(argv[1]) as f:
        request = json.load(f)
    out = Out(argv[2])
    import torch

    torch.set_num_threads(max(1, int(request.get("threads", 1))))
    cpu_only()
    collector = Collector(request, out)
    for name in SECTIONS:
        out.save(running=name)
        start = time.perf_counter()
        if name != "import" and collector.module is None:
            break
        if name not in ("import", "activation", "builds", "trainer") and not hasattr(
            collector, "image_shape"
        ):
            break
        try:
            out.sections[name] = getattr(collector, f"section_{name}")()
        except BaseException as e:  # noqa: BLE001 - the student's code failed outside a single call
            out.sections[name] = {"error": error_text(e)}
        print(f"[grade] collected {name} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    out.save(running=None)
    return 0


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    boot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_boot.py")
    if os.path.exists(boot):
        import runpy

        runpy.run_path(boot)["install"]()
    sys.exit(main(sys.argv))
