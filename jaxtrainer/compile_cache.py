"""JAX's persistent compilation cache, on by default: a program compiled once on this machine is read
back from disk by the next command instead of compiled again (the digits homework, `--epochs 3`:
~40 s cold, ~12 s warm; `python -m benchmarks.warm_start` measures it).

The folder is $JAXTRAINER_CACHE_DIR, else $XDG_CACHE_HOME/jaxtrainer/xla, else
~/.cache/jaxtrainer/xla; JAXTRAINER_NO_CACHE=1 turns the cache off. A folder chosen through JAX
itself (JAX_COMPILATION_CACHE_DIR, jax.config) is left alone. A folder that cannot be written is
skipped with one warning: the cache saves time and must never stop a run.

An entry JAX cannot read back (truncated by a killed writer or a full disk, garbled) is removed,
so that JAX writes the program it compiles in its place, and said in one warning line. JAX alone
warns at each such entry (a dozen lines per run) and never replaces it, since it only writes
entries that are absent: every later run would warn and compile again.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from typing import Mapping

DIR_VARIABLE = "JAXTRAINER_CACHE_DIR"
OFF_VARIABLE = "JAXTRAINER_NO_CACHE"
_FALSE = ("", "0", "false", "no")
ENTRY_SUFFIX = "-cache"  # JAX's file name of an entry: <cache key>-cache


def cache_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """The folder the cache goes to, or None when JAXTRAINER_NO_CACHE turns it off."""
    if environ.get(OFF_VARIABLE, "").strip().lower() not in _FALSE:
        return None
    if environ.get(DIR_VARIABLE):
        return os.path.expanduser(environ[DIR_VARIABLE])
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxtrainer", "xla")


def _writable(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def enable() -> str | None:
    """Point JAX's persistent cache at `cache_dir()` and keep every compiled program there (JAX's
    default keeps only those that took a second or more to compile; most of ours take less, and
    together they are most of a short command's time). Returns the folder in use, or None. Cheap:
    nothing is compiled, and JAX reads the setting at the first compilation."""
    import jax

    chosen = jax.config.values["jax_compilation_cache_dir"]
    if chosen:
        return chosen
    folder = cache_dir()
    if folder is None:
        return None
    if not _writable(folder):
        warnings.warn(
            f"jaxtrainer: the compilation cache folder {folder} cannot be written, so programs are "
            f"compiled anew each time; set {DIR_VARIABLE} to another folder, or {OFF_VARIABLE}=1 to "
            "turn the cache off",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    _repair_entries(folder)
    return folder


def _repair_entries(folder: str) -> None:
    """Wrap JAX's reader of cache entries (`get_executable_and_time`, which its compiler looks up
    at each read) so that an entry it cannot read is removed and read as a miss: JAX then compiles
    the program and writes the entry anew. Its own check of an entry's integrity
    (CacheVerificationError) still raises, as JAX wants."""
    from jax._src import compilation_cache

    read = compilation_cache.get_executable_and_time
    if getattr(read, "repairs", None) == folder:
        return
    said = []

    @functools.wraps(read)
    def repairing(cache_key, *args, **kwargs):
        try:
            return read(cache_key, *args, **kwargs)
        except compilation_cache.CacheVerificationError:
            raise
        except Exception as e:
            path = os.path.join(folder, f"{cache_key}{ENTRY_SUFFIX}")
            try:
                os.remove(path)
            except OSError:
                return None, None  # not ours to repair (read-only, gone): JAX compiles it anyway
            if not said:
                said.append(path)
                warnings.warn(
                    f"jaxtrainer: removed a corrupt entry of the compilation cache {folder} "
                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}); "
                    "its program is compiled again and saved in its place (any other corrupt entry too)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return None, None

    repairing.repairs = folder  # a mark on the wrapper  # pyright: ignore[reportAttributeAccessIssue]
    compilation_cache.get_executable_and_time = repairing
