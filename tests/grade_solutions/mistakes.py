"""The usual mistakes in the homework (those the widely copied solution makes, and more), each as
edits of `correct.py`: what a student hands in when they make that one mistake.

`write(folder, names)` writes the named variants as `<name>.py` (`tests/test_grade_class.py`).
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
CORRECT = os.path.join(HERE, "correct.py")
LOADER_CORRECT = os.path.join(HERE, "loader_correct.py")  # the loader year's correct solution

_ADAM = "self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)"
_INITIAL_LOG = (
    "        self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)\n        for _ in range"
)

# name: [(text of correct.py, its replacement), ...]; each text must occur in correct.py.
MISTAKES: Dict[str, List[Tuple[str, str]]] = {
    "no_last_activation": [
        (
            "            layers.append(copy.deepcopy(activation))\n            if i < last:\n",
            "            if i < last:\n                layers.append(copy.deepcopy(activation))\n",
        )
    ],
    "shared_activation": [("copy.deepcopy(activation)", "activation")],
    "step_returns_loss": [("return loss.detach(), mae.detach()", "return loss.detach()")],
    "no_initial_log": [(_INITIAL_LOG, "        for _ in range")],
    "shuffled_dropped_batches": [
        (
            "            for batch in range(n_batches):\n"
            "                rows = slice(batch * self.batch_size, (batch + 1) * self.batch_size)\n"
            "                self.training_step(X_train[rows], y_train[rows])\n",
            "            batches = torch.utils.data.DataLoader(\n"
            "                torch.utils.data.TensorDataset(X_train, y_train),\n"
            "                batch_size=self.batch_size, shuffle=True, drop_last=True,\n"
            "            )\n"
            "            for X_batch, y_batch in batches:\n"
            "                self.training_step(X_batch, y_batch)\n",
        )
    ],
    "wrong_optimizer": [(_ADAM, _ADAM.replace("Adam", "RMSprop"))],
    "sgd_no_initial_log": [(_ADAM, _ADAM.replace("Adam", "SGD")), (_INITIAL_LOG, "        for _ in range")],
    "syntax_error": [
        ("def create_activation_function(activation_str: str) -> nn.Module:", "def create_act(:")
    ],
    "sleeps_forever": [("import copy\n", "import copy\nimport time\n\ntime.sleep(10**6)\n")],
}

# The widely copied solution: four of the mistakes at once.
MISTAKES["widely_copied"] = [
    edit
    for name in ("no_last_activation", "shared_activation", "step_returns_loss", "no_initial_log")
    for edit in MISTAKES[name]
]

_ACTIVATION = 'return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation_str.lower()]()'
_LOSS = "return F.mse_loss(prediction, y), F.l1_loss(prediction, y)"
_LOSS_BODY = f"        prediction = self.network(X)\n        {_LOSS}\n"
_MLP_LAYERS = (
    "        layers = [nn.Flatten()]\n"
    "        for hidden in net_config.dense_hiddens:\n"
    "            layers += [nn.Linear(input_dim, hidden), copy.deepcopy(activation)]\n"
    "            input_dim = hidden\n"
    "        layers.append(nn.Linear(input_dim, 1))\n"
    "        return nn.Sequential(*layers)\n"
)

# Correct code in styles seen in real solutions: each scores full marks.
STYLES: Dict[str, List[Tuple[str, str]]] = {
    "torch_spellings": [  # the statement's names only, and torch's other spellings of the same layers
        (
            _ACTIVATION,
            'return {"relu": nn.ReLU(inplace=True), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}[activation_str]',
        ),
        ("nn.MaxPool2d(kernel_size=2)", "nn.MaxPool2d(2, 2)"),
        ("nn.AdaptiveMaxPool2d((4, 4))", "nn.AdaptiveMaxPool2d(4)"),
        (
            "kernel_size=kernel, stride=stride)",
            "kernel_size=(kernel, kernel), stride=(stride, stride), padding=0)",
        ),
    ],
    "own_relu_module": [  # a student's own nn.Module for ReLU, judged by what it computes
        (
            "class NetworkConfiguration(NamedTuple):",
            "class MyReLU(nn.Module):\n    def forward(self, x):\n        return x.clamp(min=0)\n\n\n"
            "class NetworkConfiguration(NamedTuple):",
        ),
        (
            _ACTIVATION,
            'return {"relu": MyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation_str.lower()]()',
        ),
    ],
    "named_layers": [  # Sequential(OrderedDict) with names such as Dense1
        (
            _MLP_LAYERS,
            "        from collections import OrderedDict\n\n"
            "        layers = OrderedDict([('Flat', nn.Flatten())])\n"
            "        for i, hidden in enumerate(net_config.dense_hiddens):\n"
            "            layers[f'Dense{i + 1}'] = nn.Linear(input_dim, hidden)\n"
            "            layers[f'Act{i + 1}'] = type(activation)()\n"
            "            input_dim = hidden\n"
            "        layers['Out'] = nn.Linear(input_dim, 1)\n"
            "        return nn.Sequential(layers)\n",
        )
    ],
    "hard_coded_cuda": [  # a notebook habit: the grader has no GPU, the moves stay on the CPU
        (
            "        return nn.Sequential(*layers)\n\n    @staticmethod\n    def create_cnn",
            "        return nn.Sequential(*layers).to('cuda')\n\n    @staticmethod\n    def create_cnn",
        ),
        (
            "        prediction = self.network(X)\n",
            "        prediction = self.network(X.to(torch.device('mps')))\n",
        ),
    ],
    "module_subclass": [  # its own nn.Module around the layers: graded by what forward runs
        (
            "        return nn.Sequential(*layers)\n\n    @staticmethod\n    def create_cnn",
            "        class MLP(nn.Module):\n"
            "            def __init__(self):\n"
            "                super().__init__()\n"
            "                self.body = nn.Sequential(*layers)\n\n"
            "            def forward(self, x):\n"
            "                return self.body(x)\n\n"
            "        return MLP()\n\n    @staticmethod\n    def create_cnn",
        )
    ],
}

# More mistakes, each caught by one check.
MORE_MISTAKES: Dict[str, List[Tuple[str, str]]] = {
    "equivariance_stub": [
        (
            "    def test_equivariance(self):\n",
            "    def test_equivariance(self):\n        pass\n\n    def _unused(self):\n",
        )
    ],
    "equivariance_no_figure": [
        (
            "        figure, axes = plt.subplots(2, 2)\n",
            "        return output, shifted, rotated\n        figure, axes = plt.subplots(2, 2)\n",
        )
    ],
    "two_backward": [
        ("        loss.backward()\n", "        loss.backward(retain_graph=True)\n        mae.backward()\n")
    ],
    "builder_calls_activation": [("copy.deepcopy(activation)", "activation()")],
    "activation_class": [(_ACTIVATION, _ACTIVATION[:-2]), ("copy.deepcopy(activation)", "activation()")],
    "rmse_loss": [(_LOSS, "return torch.sqrt(F.mse_loss(prediction, y)), F.l1_loss(prediction, y)")],
    "loss_detached": [
        (_LOSS, "return F.mse_loss(prediction, y).detach(), F.l1_loss(prediction, y).detach()")
    ],
    "lr_ignored": [(_ADAM, "self.optimizer = torch.optim.Adam(self.network.parameters())")],
    "no_zero_grad": [("        self.optimizer.zero_grad()\n", "")],
    "adamw": [(_ADAM, _ADAM.replace("Adam", "AdamW"))],
    "amsgrad": [(_ADAM, _ADAM.replace("lr=lr", "lr=lr, amsgrad=True"))],
    "relu_hard_coded": [("copy.deepcopy(activation)", "nn.ReLU()")],
    "strides_ignored": [("kernel_size=kernel, stride=stride", "kernel_size=kernel")],
    "loss_swapped": [
        (
            "return F.mse_loss(prediction, y), F.l1_loss(prediction, y)",
            "return F.l1_loss(prediction, y), F.mse_loss(prediction, y)",
        )
    ],
    "loss_stub": [(_LOSS_BODY, "        # TODO: the MSE and the MAE of the batch\n        pass\n")],
    "loss_not_implemented": [(_LOSS_BODY, "        raise NotImplementedError  # TODO\n")],
    "activation_not_implemented": [
        (f"        {_ACTIVATION}\n", "        raise NotImplementedError  # TODO\n")
    ],
}
# A stub in compute_loss_and_mae, and a mistake of training_step's own.
MORE_MISTAKES["loss_stub_no_zero_grad"] = MORE_MISTAKES["loss_stub"] + MORE_MISTAKES["no_zero_grad"]


# The loader year's variants, as edits of loader_correct.py.
LOADER: Dict[str, List[Tuple[str, str]]] = {
    "loader_correct": [],
    "loader_cifar": [  # the year's other data set
        ('SVHN(root="./data", split="train",', 'CIFAR10(root="./data", train=True,'),
        ('SVHN(root="./data", split="test",', 'CIFAR10(root="./data", train=False,'),
    ],
    "loader_broadcast": [  # the silent broadcast: the loader's (B,) labels against (B, 1) predictions
        ("        y = y.view(-1, 1).float()", "        y = y.float()"),
    ],
    "loader_loss_stub": [  # a TODO left in compute_loss_and_mae: evaluate and training_step call it
        ("        y = y.view(-1, 1).float()", "        raise NotImplementedError  # TODO\n        y = y"),
    ],
}


def variant(name: str) -> str:
    """correct.py (loader_correct.py for the loader year's) with the named mistake's edits."""
    with open(LOADER_CORRECT if name in LOADER else CORRECT) as f:
        source = f.read()
    for old, new in {"correct": [], **MISTAKES, **STYLES, **MORE_MISTAKES, **LOADER}[name]:
        if old not in source:
            raise ValueError(f"mistake {name!r}: {old!r} is not in correct.py")
        source = source.replace(old, new)
    return source


def write(folder: str, names) -> Dict[str, str]:
    """`<folder>/<name>.py` for each named variant ("correct" included); {name: path}."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name in names:
        paths[name] = os.path.join(folder, f"{name}.py")
        with open(paths[name], "w") as f:
            f.write(variant(name))
    return paths
