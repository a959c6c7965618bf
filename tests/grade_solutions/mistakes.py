"""The usual mistakes in the homework (those the widely copied solution makes, and more), each as
edits of `correct.py`: what a student hands in when they make that one mistake.

`write(folder, names)` writes the named variants as `<name>.py` (`tests/test_grade.py`).
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

CORRECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "correct.py")

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

# More mistakes, each caught by one check (tests/test_grade.py runs that check alone, in-process).
MORE_MISTAKES: Dict[str, List[Tuple[str, str]]] = {
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
}


def variant(name: str) -> str:
    """correct.py with the named mistake's edits ("correct": none)."""
    with open(CORRECT) as f:
        source = f.read()
    for old, new in {"correct": [], **MISTAKES, **MORE_MISTAKES}[name]:
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
