"""Runs first in every grading sandbox, before the student's code: `import torchvision` works beside
the CPU torch, and no torchvision data set, urllib or requests call reaches the network.

Standalone on purpose: the grader mounts this one file read-only (as /grader/sandbox_boot.py) in a
sandbox where neither jaxtrainer nor torch_compat is importable, so it imports the standard library
only, and torch or torchvision only if the student does.

Why torchvision needs help: the registry's torchvision wheel is built against the CUDA torch, so its
compiled operators (`_C.so`: nms, roi_align...) do not load beside the CPU torch. torchvision itself
copes (`extension._has_ops()` is then False and `torchvision.ops` raises a clear error when called),
except `_meta_registrations`, which registers fake kernels for two of those operators unconditionally
and fails the whole import with "operator torchvision::nms does not exist". An import hook serves an
empty module in its place when, and only when, the operators did not load; everything pure-Python
(datasets, transforms, models without weights, utils) works unchanged.
"""

from __future__ import annotations

import errno
import importlib.machinery
import os
import socket
import sys

OFFLINE = "grading is offline"
_MARK = "_jaxtrainer_grading_offline"  # on what install() has patched: a second call patches nothing twice


def install(data_root: str | None = None) -> None:
    """Make torchvision importable and every download offline; idempotent, and it imports nothing.

    `data_root`: the folder where the grader put its local copies of the data sets (SVHN's
    `train_32x32.mat`, CIFAR-10's `cifar-10-batches-py/`...). A data set whose own root lacks its
    files reads them from there instead, so that `root='./data'`, `'data/'` or `'/content/data'`
    all find the same copy. None: each data set reads its own root only.
    """
    finder = next((f for f in sys.meta_path if getattr(f, _MARK, False)), None)
    if finder is None:
        finder = _TorchvisionFinder()
        sys.meta_path.insert(0, finder)
    finder.data_root = os.path.abspath(data_root) if data_root else None
    _block_network()
    if "torchvision.datasets" in sys.modules:  # imported before install(): patch it now
        _make_datasets_offline(finder)


class _TorchvisionFinder:
    """Serves an empty `torchvision._meta_registrations` when torchvision's operators did not load,
    and makes `torchvision.datasets` offline as soon as it is imported. Every other import, and
    torchvision itself, goes through the usual finders."""

    def __init__(self):
        setattr(self, _MARK, True)
        self.data_root = None

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision._meta_registrations":
            extension = sys.modules.get("torchvision.extension")  # torchvision imports it first
            if extension is not None and extension._has_ops():
                return None  # a torchvision built for this torch: its own registrations
            return importlib.machinery.ModuleSpec(fullname, _EmptyModule(), origin="sandbox_boot")
        if fullname == "torchvision.datasets":
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None:
                        spec.loader = _ThenPatch(spec.loader, lambda: _make_datasets_offline(self))
                    return spec
        return None


class _EmptyModule:
    """Loader of a module with nothing in it: fake kernels for operators that do not exist."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__doc__ = "Left empty by sandbox_boot: torchvision's compiled operators did not load."


class _ThenPatch:
    """The real loader of `torchvision.datasets`, followed by `then()` once the package has run."""

    def __init__(self, loader, then):
        self._loader, self._then = loader, then

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._then()

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self._loader, name)


def _svhn_files(dataset, root):
    return [os.path.join(root, dataset.filename)]


def _cifar_files(dataset, root):  # CIFAR100 too: same layout, its own file names
    names = [name for name, _ in dataset.train_list + dataset.test_list] + [dataset.meta["filename"]]
    return [os.path.join(root, dataset.base_folder, name) for name in names]


def _mnist_files(dataset, root):  # MNIST, FashionMNIST, KMNIST: the unpacked raw IDX files
    raw = os.path.join(root, type(dataset).__name__, "raw")
    return [os.path.join(raw, os.path.splitext(os.path.basename(name))[0]) for name, _ in dataset.resources]


# (module, class, the method that says the files are there, the files): the subclasses inherit
_LOCAL_COPIES = (
    ("svhn", "SVHN", "_check_integrity", _svhn_files),
    ("cifar", "CIFAR10", "_check_integrity", _cifar_files),
    ("mnist", "MNIST", "_check_exists", _mnist_files),
)


def _make_datasets_offline(finder) -> None:
    """Files count as present without their md5 (the grader's copies are small), the data sets the
    homework uses load from their root or `finder.data_root` or raise a clear offline error, and
    every other download in torchvision.datasets fails at once, naming its URL."""
    utils = sys.modules["torchvision.datasets.utils"]
    if getattr(utils, _MARK, False):
        return

    def check_integrity(fpath, md5=None):
        return os.path.isfile(fpath)

    def offline_download(url, *args, **kwargs):
        raise RuntimeError(f"{OFFLINE}: torchvision cannot download {url}; nothing is downloaded here")

    replacements = (
        (utils.check_integrity, check_integrity),
        (utils.download_file_from_google_drive, offline_download),
    )
    for name, module in list(sys.modules.items()):
        if module is not None and (name + ".").startswith("torchvision.datasets."):
            for attribute, value in list(vars(module).items()):
                for old, new in replacements:
                    if value is old:
                        setattr(module, attribute, new)
    utils._urlretrieve = offline_download  # download_url's last steps, for every other data set
    utils._get_redirect_url = offline_download

    for module_name, class_name, check_name, files in _LOCAL_COPIES:
        cls = getattr(sys.modules[f"torchvision.datasets.{module_name}"], class_name)
        has_copy, download = _local_copy_methods(finder, files)
        setattr(cls, check_name, has_copy)
        cls.download = download
    setattr(utils, _MARK, True)


def _local_copy_methods(finder, files):
    """(the data set's "files are there" check, its `download`), both reading the files from the
    data set's root, else from the grader's data root (which then becomes the data set's root)."""

    def has_copy(self) -> bool:
        if all(os.path.isfile(f) for f in files(self, self.root)):
            return True
        if finder.data_root and all(os.path.isfile(f) for f in files(self, finder.data_root)):
            self.root = finder.data_root
            return True
        return False

    def download(self) -> None:
        if has_copy(self):
            return
        missing = next(f for f in files(self, self.root) if not os.path.isfile(f))
        served = f"; the grader's data are under {finder.data_root}" if finder.data_root else ""
        raise RuntimeError(
            f"{OFFLINE}: torchvision.datasets.{type(self).__name__} has no local copy under "
            f"{os.path.abspath(self.root)} (no {os.path.relpath(missing, self.root)}){served}, "
            "and nothing is downloaded"
        )

    return has_copy, download


def _block_network() -> None:
    """Name resolution and connections to anything but this machine fail at once with an offline
    error (urllib, requests and torch.hub all resolve through socket.getaddrinfo), instead of
    waiting for a network that the sandbox does not have. A courtesy, not a wall: the sandbox's
    network namespace is the wall."""
    if getattr(socket.getaddrinfo, _MARK, False):
        return
    resolve, connect, connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def is_local(host) -> bool:
        host = host.decode() if isinstance(host, bytes) else host
        return host is None or host in ("localhost", "::1", "") or str(host).startswith("127.")

    def getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            raise socket.gaierror(socket.EAI_NONAME, f"{OFFLINE}: no network, cannot resolve {host!r}")
        return resolve(host, *args, **kwargs)

    def refused(sock, address) -> bool:
        return sock.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0])

    def guarded_connect(self, address):
        if refused(self, address):
            raise OSError(errno.ENETUNREACH, f"{OFFLINE}: no network, cannot connect to {address[0]}")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        return errno.ENETUNREACH if refused(self, address) else connect_ex(self, address)

    setattr(getaddrinfo, _MARK, True)
    socket.getaddrinfo = getaddrinfo
    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
