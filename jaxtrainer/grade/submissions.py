"""Which submissions to grade, and their names: a `.py` file is named by its stem, a folder holding
`solution.py` by the folder's name."""

from __future__ import annotations

import os
import shutil
from typing import List, NamedTuple, Sequence

from ..errors import InputError

SOLUTION_FILE = "solution.py"
MAX_FILE_BYTES = 16 << 20  # a .py file larger than this is not code a student wrote


class Submission(NamedTuple):
    """One student's solution; `name` (the file's stem or the folder's name) is its folder under OUT."""

    name: str
    path: str  # the .py file or the folder, absolute

    def copy_to(self, folder: str) -> None:
        """Write the submission into a work folder as `solution.py`; a folder's other top-level
        `.py` files (modules solution.py imports) come along, nothing else (no data sets). The
        grader copies as root: a link inside a submission folder (to another student's file, to
        the grader's secrets) is never followed, and files over 16 MB are left out."""
        if os.path.isfile(self.path):
            shutil.copyfile(self.path, os.path.join(folder, SOLUTION_FILE))
            return
        for entry in os.scandir(self.path):
            if (
                entry.name.endswith(".py")
                and entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_size <= MAX_FILE_BYTES
            ):
                shutil.copyfile(entry.path, os.path.join(folder, entry.name), follow_symlinks=False)


def find(paths: Sequence[str]) -> List[Submission]:
    """The submissions in the order given; ValueError names a path that is none, or two that
    would share a name (each gets its own OUT/<name>/)."""
    found, by_name = [], {}
    for given in paths:
        path = os.path.abspath(given)
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(path, SOLUTION_FILE)):
                raise InputError(f"submission folder {given!r} holds no {SOLUTION_FILE}")
            name = os.path.basename(os.path.normpath(path))
        elif os.path.isfile(path):
            if not path.endswith(".py"):
                raise InputError(
                    f"submission {given!r} is not a .py file or a folder holding {SOLUTION_FILE}"
                )
            name = os.path.splitext(os.path.basename(path))[0]
        else:
            raise InputError(f"submission {given!r} does not exist")
        if name in by_name:
            raise InputError(
                f"submissions {by_name[name]!r} and {given!r} are both named {name!r}: each needs its own "
                "name (a .py file is named by its stem, a folder by its name)"
            )
        by_name[name] = given
        found.append(Submission(name, path))
    return found
