"""JAX's persistent compilation cache, on by default (the digits homework: ~40 s cold, ~12 s warm), in
$JAXTRAINER_CACHE_DIR or the XDG cache folder; JAXTRAINER_NO_CACHE=1 turns it off, a folder chosen
through JAX is left alone, an unwritable one skipped with a warning. An entry JAX cannot read back is
removed (JAX alone would warn and recompile it at every run), with one warning."""

from __future__ import annotations

import functools
import os
import warnings
from typing import Mapping

from . import files

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


def enable() -> str | None:
    """Point JAX's persistent cache at `cache_dir()`, keeping every program (JAX's default keeps only
    those over 1 s to compile: most of ours). Returns the folder in use, or None; compiles nothing."""
    import jax

    chosen = jax.config.values["jax_compilation_cache_dir"]
    if chosen:
        return chosen
    folder = cache_dir()
    if folder is None:
        return None
    try:
        files.check_writable_folder(folder, "compilation cache folder")
    except files.FileError:
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
    """Wrap JAX's reader of cache entries so that one it cannot read is removed and read as a miss (JAX
    then compiles and writes it anew); its own CacheVerificationError still raises."""
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
            try:
                os.remove(os.path.join(folder, f"{cache_key}{ENTRY_SUFFIX}"))
            except OSError:
                return None, None  # not ours to repair (read-only, gone): JAX compiles it anyway
            if not said:
                said.append(True)
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
