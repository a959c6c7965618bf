"""`jaxtrainer --version`: the package's one version, printed without loading JAX."""

import subprocess
import sys
from pathlib import Path

from packaging.version import Version

import jaxtrainer

ROOT = Path(__file__).resolve().parents[1]


def test_version_prints_the_packages_version_without_jax():
    code = (
        "import sys\nfrom jaxtrainer.cli import main\ntry:\n    main(['--version'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'jax' not in sys.modules, 'jax loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"jaxtrainer {jaxtrainer.__version__}\n"
    assert str(Version(jaxtrainer.__version__)) == jaxtrainer.__version__  # a normalised PEP 440 version


def test_pyproject_reads_the_version_from_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "jaxtrainer.__version__" }' in pyproject
    assert "\nversion =" not in pyproject.split("[tool.setuptools.dynamic]")[0]  # no second copy
