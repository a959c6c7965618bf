"""The persistent compilation cache (jaxtrainer/compile_cache.py): where it goes, and that the
environment variables move it and turn it off, in fresh interpreters; that importing the package
changes nothing in JAX's settings, and that the facade's Trainer turns the cache on unless told not to."""

import json
import os
import subprocess
import sys

import pytest

from jaxtrainer.compile_cache import cache_dir

# Set the cache up (as the CLI and the Trainer do), compile one small program, print the folder in use.
COMPILE_ONE = (
    "import jax, jax.numpy as jnp, jaxtrainer.compile_cache; jaxtrainer.compile_cache.enable(); "
    "jax.jit(lambda x: x * 2.0 + 1.0)(jnp.arange(3.0)).block_until_ready(); "
    "print(jax.config.values['jax_compilation_cache_dir'])"
)
VARIABLES = ("JAXTRAINER_CACHE_DIR", "JAXTRAINER_NO_CACHE", "JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME")


def python(tmp_path, code: str, **env):
    """`code` in a fresh interpreter whose environment has none of VARIABLES but `env`'s."""
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**clean, "HOME": str(tmp_path / "home"), **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def compile_one(tmp_path, **env):
    return python(tmp_path, COMPILE_ONE, **env)


def files(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_the_folder_follows_the_variables_and_the_xdg_default():
    home = os.path.expanduser("~")
    assert cache_dir({}) == os.path.join(home, ".cache", "jaxtrainer", "xla")
    assert cache_dir({"XDG_CACHE_HOME": "/var/c"}) == "/var/c/jaxtrainer/xla"
    assert cache_dir({"XDG_CACHE_HOME": "relative"}) == os.path.join(home, ".cache", "jaxtrainer", "xla")
    assert cache_dir({"XDG_CACHE_HOME": "/var/c", "JAXTRAINER_CACHE_DIR": "/elsewhere"}) == "/elsewhere"
    assert cache_dir({"JAXTRAINER_CACHE_DIR": "~/x"}) == os.path.join(home, "x")
    for off in ("1", "yes", "true"):
        assert cache_dir({"JAXTRAINER_NO_CACHE": off, "JAXTRAINER_CACHE_DIR": "/elsewhere"}) is None
    for on in ("", "0", "false"):
        assert cache_dir({"JAXTRAINER_NO_CACHE": on, "JAXTRAINER_CACHE_DIR": "/elsewhere"}) == "/elsewhere"


@pytest.mark.slow
def test_a_compiled_program_lands_in_jaxtrainer_cache_dir(tmp_path):
    cache = tmp_path / "xla"
    done = compile_one(tmp_path, JAXTRAINER_CACHE_DIR=str(cache))
    assert done.stdout.strip() == str(cache)
    assert files(cache), "nothing was written to the cache folder"


@pytest.mark.slow
def test_the_default_folder_is_under_xdg_cache_home(tmp_path):
    compile_one(tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert files(tmp_path / "xdg" / "jaxtrainer" / "xla")
    assert not (tmp_path / "home" / ".cache" / "jaxtrainer").exists()


@pytest.mark.slow
def test_jaxtrainer_no_cache_writes_nothing(tmp_path):
    cache = tmp_path / "xla"
    done = compile_one(tmp_path, JAXTRAINER_CACHE_DIR=str(cache), JAXTRAINER_NO_CACHE="1")
    assert done.stdout.strip() == "None"
    assert files(cache) == [] and not (tmp_path / "home" / ".cache" / "jaxtrainer").exists()


@pytest.mark.slow
def test_a_folder_chosen_through_jax_is_left_alone(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    done = compile_one(tmp_path, JAXTRAINER_CACHE_DIR=str(ours), JAX_COMPILATION_CACHE_DIR=str(theirs))
    assert done.stdout.strip() == str(theirs)
    assert files(ours) == []  # (nor is JAX's one-second threshold changed: the tiny program stays out)
    assert files(theirs) == []


@pytest.mark.slow
@pytest.mark.parametrize("blocker", ["a file where the folder should be", "a file as its parent"])
def test_an_unwritable_folder_warns_once_and_compiles_anyway(tmp_path, blocker):
    (tmp_path / "taken").write_text("not a folder")
    cache = tmp_path / "taken" if blocker.startswith("a file where") else tmp_path / "taken" / "xla"
    done = compile_one(tmp_path, JAXTRAINER_CACHE_DIR=str(cache))
    assert done.stdout.strip() == "None"
    assert done.stderr.count(f"the compilation cache folder {cache} cannot be written") == 1


@pytest.mark.slow
def test_the_command_line_says_the_warning_in_one_line(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    done = subprocess.run(
        [sys.executable, "-m", "jaxtrainer", "train", "--hidden", "8", "--epochs", "1", "--no-progress"]
        + ["--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**clean, "JAXTRAINER_CACHE_DIR": str(tmp_path / "taken")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.splitlines() == [
        f"jaxtrainer: warning: the compilation cache folder {tmp_path / 'taken'} cannot be written, so "
        "programs are compiled anew each time; set JAXTRAINER_CACHE_DIR to another folder, or "
        "JAXTRAINER_NO_CACHE=1 to turn the cache off"
    ]


@pytest.mark.slow
def test_corrupt_entries_are_replaced_once_with_one_line(tmp_path):
    """Entries cut short (a killed writer, a full disk) or garbled: the next command removes them,
    says so in one line and saves its programs in their place; the one after reads them, silent."""
    cache = tmp_path / "xla"
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}

    def train(out):
        done = subprocess.run(
            [sys.executable, "-m", "jaxtrainer", "train", "--hidden", "8", "--epochs", "1", "--no-progress"]
            + ["--out", str(tmp_path / out)],
            capture_output=True,
            text=True,
            env={**clean, "JAXTRAINER_CACHE_DIR": str(cache)},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr.splitlines()

    assert train("first") == []
    entries = sorted(cache.glob("*-cache"))
    assert len(entries) > 2
    for i, entry in enumerate(entries):
        whole = entry.read_bytes()
        entry.write_bytes(whole[: len(whole) // 2] if i % 2 else b"\x00garbage" * 10)
    said = train("second")
    assert len(said) == 1, said
    start = f"jaxtrainer: warning: removed a corrupt entry of the compilation cache {cache} ("
    end = "; its program is compiled again and saved in its place (any other corrupt entry too)"
    assert said[0].startswith(start) and said[0].endswith(end), said
    assert train("third") == []


# Every module of both packages imported, then a Trainer built: JAX's settings after each.
IMPORT_THEN_TRAINER = """
import importlib, json, pkgutil, jax
before = dict(jax.config.values)
import jaxtrainer, torch_compat
for package in (jaxtrainer, torch_compat):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
changed = sorted(k for k in jax.config.values if jax.config.values[k] != before.get(k))
import numpy as np
data = ((np.zeros((4, 1, 28, 28), np.float32), np.zeros((4, 1), np.float32)),) * 2
torch_compat.Trainer(dataset=data, progress=False)
print(json.dumps({"by_import": changed, "dir": jax.config.values["jax_compilation_cache_dir"],
                  "min_secs": jax.config.values["jax_persistent_cache_min_compile_time_secs"]}))
"""


def import_then_trainer(tmp_path, **env):
    return json.loads(python(tmp_path, IMPORT_THEN_TRAINER, **env).stdout.strip().splitlines()[-1])


def test_importing_the_package_leaves_jax_config_alone_and_a_trainer_turns_the_cache_on(tmp_path):
    seen = import_then_trainer(tmp_path, JAXTRAINER_CACHE_DIR=str(tmp_path / "xla"))
    assert seen == {"by_import": [], "dir": str(tmp_path / "xla"), "min_secs": 0}


def test_jaxtrainer_no_cache_keeps_the_trainer_off_jax_settings(tmp_path):
    seen = import_then_trainer(tmp_path, JAXTRAINER_CACHE_DIR=str(tmp_path / "xla"), JAXTRAINER_NO_CACHE="1")
    assert seen == {"by_import": [], "dir": None, "min_secs": 1.0}
