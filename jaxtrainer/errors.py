"""The errors a user or the environment causes, as opposed to bugs.

The CLI prints a `JaxtrainerError` as one `jaxtrainer: error: ...` line and exits 2; anything else
(a `ValueError` from a bug inside the engine or JAX included) keeps its traceback. No JAX here:
every layer, the grader and `bench` raise these.
"""


class JaxtrainerError(Exception):
    """A user or environment error: its message names the bad value or file and what to do."""


class InputError(JaxtrainerError, ValueError):
    """A bad argument value. Also a `ValueError`, as PyTorch and the homework's tests expect from
    a bad argument to the facade."""
