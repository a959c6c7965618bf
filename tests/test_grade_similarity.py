"""Similar submissions (`jaxtrainer.grade.similarity`, real copydetect): a copy with renamed variables
and moved whitespace is found, independent code is not, the template's code counts for nobody, and
hostile names reach neither a spreadsheet formula nor the HTML."""

import csv
import os

import pytest

from jaxtrainer import files
from jaxtrainer.grade import similarity

TEMPLATE = '''"""IFT 3395 homework: complete the methods marked TODO."""
import random
from typing import NamedTuple, Tuple

import numpy as np
import torch
from torch import nn

random.seed(197331)
np.random.seed(197331)
torch.manual_seed(197331)


class NetworkConfiguration(NamedTuple):
    n_channels: Tuple[int, ...] = (16, 32, 48)
    kernel_sizes: Tuple[int, ...] = (3, 3, 3)
    strides: Tuple[int, ...] = (1, 1, 1)
    dense_hiddens: Tuple[int, ...] = (256, 256)


class Trainer:
    def __init__(self, network_type="mlp", net_config=NetworkConfiguration(), lr=0.001, batch_size=128,
                 activation_name="relu"):
        self.lr = lr
        self.batch_size = batch_size
        self.train, self.test = self.load_dataset()
        activation = self.create_activation_function(activation_name)
        input_shape = self.train[0].shape[1:]
        if network_type == "mlp":
            self.network = self.create_mlp(int(np.prod(input_shape)), net_config, activation)
        elif network_type == "cnn":
            self.network = self.create_cnn(input_shape[0], net_config, activation)
        else:
            raise ValueError(f"unknown network type {network_type}")
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)
        self.train_logs = {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}

    def train_loop(self, n_epochs):
        X_train, y_train = self.train
        X_test, y_test = self.test
        n_batches = int(np.ceil(X_train.shape[0] / self.batch_size))
        self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)
        for epoch in range(n_epochs):
            for batch in range(n_batches):
                minibatchX = X_train[self.batch_size * batch:self.batch_size * (batch + 1), :]
                minibatchY = y_train[self.batch_size * batch:self.batch_size * (batch + 1), :]
                self.training_step(minibatchX, minibatchY)
            self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)
        return self.train_logs
'''

# Two of the students' answers: `ANSWER` and `COPY` (its variables renamed, its whitespace, blank lines
# and comments changed), and an independent one written another way.
ANSWER = """
    @staticmethod
    def create_activation_function(activation_str):
        if activation_str == "relu":
            return nn.ReLU()
        elif activation_str == "tanh":
            return nn.Tanh()
        return nn.Sigmoid()

    @staticmethod
    def create_mlp(input_dim, net_config, activation):
        layers = [nn.Flatten()]
        previous = input_dim
        for hidden in net_config.dense_hiddens:
            layers.append(nn.Linear(previous, hidden))
            layers.append(copy.deepcopy(activation))
            previous = hidden
        layers.append(nn.Linear(previous, 1))
        return nn.Sequential(*layers)

    @staticmethod
    def create_cnn(in_channels, net_config, activation):
        layers = []
        for i, (channels, kernel, stride) in enumerate(zip(net_config.n_channels, net_config.kernel_sizes,
                                                           net_config.strides)):
            layers.append(nn.Conv2d(in_channels, channels, kernel_size=kernel, stride=stride))
            layers.append(copy.deepcopy(activation))
            if i < len(net_config.n_channels) - 1:
                layers.append(nn.MaxPool2d(kernel_size=2))
            in_channels = channels
        layers.append(nn.AdaptiveMaxPool2d((4, 4)))
        layers.append(nn.Flatten())
        features = 16 * net_config.n_channels[-1]
        for hidden in net_config.dense_hiddens:
            layers.append(nn.Linear(features, hidden))
            layers.append(copy.deepcopy(activation))
            features = hidden
        layers.append(nn.Linear(features, 1))
        return nn.Sequential(*layers)

    def compute_loss_and_mae(self, X, y):
        prediction = self.network(X)
        loss = torch.mean((prediction - y) ** 2)
        mae = torch.mean(torch.abs(prediction - y))
        return loss, mae

    def training_step(self, X_batch, y_batch):
        self.optimizer.zero_grad()
        loss, mae = self.compute_loss_and_mae(X_batch, y_batch)
        loss.backward()
        self.optimizer.step()
        return loss, mae
"""

COPY = """
    @staticmethod
    def create_activation_function( name ):
        # pick the activation
        if name=="relu":
            return nn.ReLU()

        elif name=="tanh":
            return nn.Tanh()
        return nn.Sigmoid()

    @staticmethod
    def create_mlp(n_in, cfg, act):
        modules = [nn.Flatten()]
        last = n_in

        for width in cfg.dense_hiddens:
            modules.append( nn.Linear(last, width) )
            modules.append( copy.deepcopy(act) )
            last = width
        modules.append(nn.Linear(last, 1))    # the output layer
        return nn.Sequential(*modules)

    @staticmethod
    def create_cnn(c_in, cfg, act):
        modules = []
        for idx, (c_out, k, s) in enumerate(zip(cfg.n_channels, cfg.kernel_sizes, cfg.strides)):
            modules.append(nn.Conv2d(c_in, c_out, kernel_size=k, stride=s))
            modules.append(copy.deepcopy(act))
            if idx < len(cfg.n_channels) - 1:
                modules.append(nn.MaxPool2d(kernel_size=2))
            c_in = c_out

        modules.append(nn.AdaptiveMaxPool2d((4, 4)))
        modules.append(nn.Flatten())
        n_features = 16 * cfg.n_channels[-1]
        for width in cfg.dense_hiddens:
            modules.append(nn.Linear(n_features, width))
            modules.append(copy.deepcopy(act))
            n_features = width
        modules.append(nn.Linear(n_features, 1))
        return nn.Sequential(*modules)

    def compute_loss_and_mae(self, inputs, targets):
        out = self.network(inputs)
        mse = torch.mean((out - targets) ** 2)
        l1 = torch.mean(torch.abs(out - targets))
        return mse, l1

    def training_step(self, xb, yb):
        self.optimizer.zero_grad()
        mse, l1 = self.compute_loss_and_mae(xb, yb)
        mse.backward()
        self.optimizer.step()
        return mse, l1
"""

INDEPENDENT = """
    @staticmethod
    def create_activation_function(activation_str):
        table = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
        try:
            return table[activation_str.lower()]()
        except KeyError:
            raise ValueError(f"no activation called {activation_str!r}") from None

    @staticmethod
    def create_mlp(input_dim: int, net_config: NetworkConfiguration, activation: nn.Module) -> nn.Module:
        sizes = [input_dim, *net_config.dense_hiddens]
        hidden = [
            block
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
            for block in (nn.Linear(n_in, n_out), type(activation)())
        ]
        return nn.Sequential(nn.Flatten(), *hidden, nn.Linear(sizes[-1], 1))

    @staticmethod
    def create_cnn(in_channels: int, net_config: NetworkConfiguration, activation: nn.Module) -> nn.Module:
        convs = OrderedDict()
        specs = list(zip(net_config.n_channels, net_config.kernel_sizes, net_config.strides))
        for number, (width, size, step) in enumerate(specs, start=1):
            convs[f"conv{number}"] = nn.Conv2d(in_channels, width, size, step)
            convs[f"act{number}"] = type(activation)()
            if number != len(specs):
                convs[f"pool{number}"] = nn.MaxPool2d(2)
            in_channels = width
        convs["squeeze"] = nn.AdaptiveMaxPool2d((4, 4))
        convs["flat"] = nn.Flatten()
        dims = [16 * in_channels, *net_config.dense_hiddens]
        for number, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            convs[f"dense{number}"] = nn.Linear(n_in, n_out)
            convs[f"dense_act{number}"] = type(activation)()
        convs["head"] = nn.Linear(dims[-1], 1)
        return nn.Sequential(convs)

    def compute_loss_and_mae(self, X: torch.Tensor, y: torch.Tensor):
        error = self.network(X).view(-1) - y.view(-1)
        return error.pow(2).mean(), error.abs().mean()

    def training_step(self, X_batch: torch.Tensor, y_batch: torch.Tensor):
        loss, mae = self.compute_loss_and_mae(X_batch, y_batch)
        self.network.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), mae.detach()
"""


def write(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def three(tmp_path):
    """ANSWER, COPY and INDEPENDENT, each as a .py file starting with the template."""
    return [
        ("alice", write(tmp_path, "alice.py", "import copy\n" + TEMPLATE + ANSWER)),
        ("bob", write(tmp_path, "bob.py", "import copy\n" + TEMPLATE + COPY)),
        (
            "carol",
            write(tmp_path, "carol.py", "from collections import OrderedDict\n" + TEMPLATE + INDEPENDENT),
        ),
    ]


def test_a_copy_with_renamed_variables_is_found_and_independent_code_is_not(tmp_path, three):
    template = write(tmp_path, "template.py", TEMPLATE)
    pairs = similarity.find_similar(three, template=template, threshold=0.5)
    assert [(p.a, p.b) for p in pairs] == [("alice", "bob")]
    (pair,) = pairs
    assert pair.similarity_a > 0.9 and pair.similarity_b > 0.9  # all but a few tokens are shared
    assert pair.similarity == max(pair.similarity_a, pair.similarity_b)
    alice_code = similarity.submission_code(three[0][1])
    shared = "".join(alice_code[start:end] for start, end in pair.spans_a)
    assert "layers.append(nn.Linear(features, hidden))" in shared  # spans index alice's own text
    # every pair, highest first, shows the independent one far below the copies
    everything = similarity.find_similar(three, template=template, threshold=0)
    assert [(p.a, p.b) for p in everything][0] == ("alice", "bob") and len(everything) == 3
    assert all(p.similarity < 0.3 for p in everything[1:]), everything[1:]
    assert everything == sorted(everything, key=lambda p: -p.similarity)


def test_the_template_code_counts_for_nobody(tmp_path, three):
    """alice and carol share only the template: without it they look alike, with it they do not."""
    without = {(p.a, p.b): p for p in similarity.find_similar(three, threshold=0)}
    assert without[("alice", "carol")].similarity > 0.5  # the starter code is most of both files
    template = write(tmp_path, "template.py", TEMPLATE)
    with_template = {(p.a, p.b): p for p in similarity.find_similar(three, template=template, threshold=0)}
    assert with_template[("alice", "carol")].similarity < 0.3
    # the copies' shared code highlighted: the template's part of alice's file only where a match
    # straddles its first or last line, all of it without the template
    start, end = len("import copy\n"), len("import copy\n" + TEMPLATE)

    def template_highlighted(pair):
        return sum(max(0, min(b, end) - max(a, start)) for a, b in pair.spans_a) / (end - start)

    assert template_highlighted(without[("alice", "bob")]) == 1
    assert template_highlighted(with_template[("alice", "bob")]) < 0.1


def test_a_folder_submission_is_its_top_level_py_files(tmp_path, three):
    folder = tmp_path / "dave"
    (folder / "sub").mkdir(parents=True)
    write(folder, "solution.py", "import copy\nfrom helpers import *\n" + TEMPLATE)
    write(folder, "helpers.py", ANSWER)
    write(folder / "sub", "ignored.py", INDEPENDENT)
    os.symlink(three[2][1], folder / "carol_link.py")  # a link to another student's file is not read
    code = similarity.submission_code(str(folder))
    assert ANSWER in code and TEMPLATE in code and INDEPENDENT not in code
    pairs = similarity.find_similar([three[0], ("dave", str(folder))], threshold=0.5)
    assert [(p.a, p.b) for p in pairs] == [("alice", "dave")]


def test_bad_input_is_named(tmp_path, three):
    with pytest.raises(ValueError, match=r"threshold must be between 0 and 1, got 1\.5"):
        similarity.find_similar(three, threshold=1.5)
    with pytest.raises(ValueError, match=r"names must be unique, 'alice' is given more than once"):
        similarity.find_similar([three[0], three[0]])
    with pytest.raises(ValueError, match=r"the template '.*nothere\.py' is not a \.py file"):
        similarity.find_similar(three, template=str(tmp_path / "nothere.py"))
    with pytest.raises(ValueError, match=r"'.*missing' is not a \.py file or a folder of \.py files"):
        similarity.find_similar([("x", str(tmp_path / "missing"))] + three)


def test_outputs_neutralise_formulas_and_escape_html(tmp_path, three):
    hostile = "=cmd|' /C calc'!A0"
    script = "<script>alert(1)</script>"
    sources = [
        (hostile, write(tmp_path, "h.py", TEMPLATE + ANSWER)),
        (script, write(tmp_path, "s.py", TEMPLATE + COPY + "\n# </pre><script>alert(2)</script>\n")),
        ("@sum", three[2][1]),
    ]
    pairs = similarity.find_similar(sources, template=write(tmp_path, "template.py", TEMPLATE))
    out = str(tmp_path / "out")
    paths = similarity.write_similarity(pairs, sources, out)
    assert paths == [os.path.join(out, "similarity.csv"), os.path.join(out, "similarity.html")]
    with open(paths[0], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["a", "b", "shared_of_a", "shared_of_b", "shared"]
    assert len(rows) == 2 and rows[1][:2] == ["'" + hostile, script]
    assert float(rows[1][4]) == pytest.approx(pairs[0].similarity, abs=5e-4)
    with open(paths[1]) as f:
        page = f.read()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)" in page  # the code is escaped too
    assert page.count("<mark>") == page.count("</mark>") > 0


def test_no_pair_above_the_threshold_still_writes_both_files(tmp_path, three):
    out = str(tmp_path / "out")
    csv_path, html_path = similarity.write_similarity([], three, out)
    with open(csv_path, newline="") as f:
        assert f.read() == "a,b,shared_of_a,shared_of_b,shared\r\n"
    with open(html_path) as f:
        assert "No pair of submissions is above the threshold." in f.read()


@pytest.mark.parametrize(
    "text, safe",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("alice", "alice"),
        ("a=b", "a=b"),
    ],
)
def test_spreadsheet_safe(text, safe):
    assert files.spreadsheet_safe(text) == safe
