"""Similar submissions: which pairs share how much code, by copydetect's winnowing (MOSS's method).

The statement warns that submissions are checked for plagiarism, and this homework's public solutions
are widely copied. copydetect tokenises each submission (names become one symbol, so renamed
variables and moved whitespace or comments change nothing), fingerprints it by winnowing and counts
the fingerprints two submissions share. The template's fingerprints are left out of every
submission, so the starter code all students share counts for nobody. Names and code come from the
students: the CSV's cells are neutralised against formulas, the HTML escapes everything it shows.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import os
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
from copydetect import CodeFingerprint, compare_files, defaults

from .. import files
from ..errors import InputError

CSV_FILE, HTML_FILE = "similarity.csv", "similarity.html"
CSV_COLUMNS = ["a", "b", "shared_of_a", "shared_of_b", "shared"]
MAX_CODE_CHARS = 1_000_000  # a submission's code read at most: a 600 MB file costs no more
MAX_PAIRS_SHOWN = 100  # pairs shown side by side in the HTML; the CSV lists all
K = defaults.NOISE_THRESHOLD  # shortest match that counts, in tokenised characters
WINDOW = defaults.GUARANTEE_THRESHOLD - defaults.NOISE_THRESHOLD + 1  # every match of K is found

Spans = Tuple[Tuple[int, int], ...]  # (start, end) character offsets of shared code in a submission


class Pair(NamedTuple):
    """Two submissions whose own code (the template left out) overlaps, and where."""

    a: str
    b: str
    similarity_a: float  # the fraction of a's code (its template part left out) also found in b
    similarity_b: float  # the same for b
    similarity: float  # the larger of the two: a short copy inside a long file still counts
    spans_a: Spans  # where a's shared code is, in `submission_code(a's path)`
    spans_b: Spans


def submission_code(path: str) -> str:
    """A submission's code: the .py file, or a folder's top-level .py files (what the grader runs),
    each after a comment naming it; links are not followed (they could point at another student)."""
    if os.path.isfile(path) and not os.path.islink(path):
        parts = [_read(path)]
    elif os.path.isdir(path):
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
        parts = [
            f"# ---- {entry.name!r} ----\n{_read(entry.path)}"
            for entry in entries
            if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False)
        ]
    else:
        raise InputError(f"{path!r} is not a .py file or a folder of .py files")
    code = "\n".join(parts)
    if len(code) > MAX_CODE_CHARS:
        code = code[:MAX_CODE_CHARS] + f"\n# [cut: only the first {MAX_CODE_CHARS} characters are compared]\n"
    return code


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(MAX_CODE_CHARS + 1)


def _fingerprint(name: str, code: str, boilerplate: np.ndarray, window: int = WINDOW) -> CodeFingerprint:
    return CodeFingerprint(name, K, window, boilerplate, fp=io.StringIO(code), language="python")


def _spans(slices: np.ndarray) -> Spans:
    return tuple((int(start), int(end)) for start, end in zip(*slices)) if len(slices) else ()


def find_similar(
    sources: Sequence[Tuple[str, str]], template: str | None = None, threshold: float = 0.5
) -> List[Pair]:
    """The pairs of submissions (name, path) sharing at least `threshold` of either one's code, the
    most similar first; the code of `template` (a .py file of the starter code) does not count."""
    if not 0 <= threshold <= 1:
        raise InputError(f"the similarity threshold must be between 0 and 1, got {threshold!r}")
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise InputError(f"submission names must be unique, {twice[0]!r} is given more than once")
    boilerplate = np.array([], dtype=np.int64)
    if template is not None:
        if not (os.path.isfile(template) and template.endswith(".py")):
            raise InputError(f"the template {template!r} is not a .py file")
        # every K-gram of the template, as copydetect's own boilerplate (window 1: none skipped)
        boilerplate = np.unique(
            np.array(list(_fingerprint(template, _read(template), boilerplate, 1).hashes))
        )
    prints = [_fingerprint(name, submission_code(path), boilerplate) for name, path in sources]
    pairs = []
    for (i, first), (j, second) in itertools.combinations(enumerate(prints), 2):
        _, shares, slices = compare_files(first, second)
        share_a, share_b = float(shares[0]), float(shares[1])
        if max(share_a, share_b) >= threshold:
            pairs.append(
                Pair(names[i], names[j], share_a, share_b, max(share_a, share_b), *map(_spans, slices))
            )
    order = {name: i for i, name in enumerate(names)}
    return sorted(pairs, key=lambda pair: (-pair.similarity, order[pair.a], order[pair.b]))


def _highlighted(code: str, spans: Spans) -> str:
    """The code escaped for HTML, its shared spans marked. (copydetect's `highlight_overlap` returns
    the code unescaped when there is no span.)"""
    out, done = [], 0
    for start, end in spans:
        start = max(start, done)
        if end <= start:
            continue
        out += [html.escape(code[done:start]), "<mark>", html.escape(code[start:end]), "</mark>"]
        done = end
    out.append(html.escape(code[done:]))
    return "".join(out)


_STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .6em}.pair{display:flex;gap:1em}
.pair>div{flex:1;min-width:0}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}
mark{background:#f5c2c2}"""


def _html(pairs: Sequence[Pair], paths: Dict[str, str]) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td><a href="#pair-{n}">{e(p.a)}</a></td><td><a href="#pair-{n}">{e(p.b)}</a></td>'
        f"<td>{p.similarity_a:.0%}</td><td>{p.similarity_b:.0%}</td><td>{p.similarity:.0%}</td></tr>"
        for n, p in enumerate(pairs)
    )
    body = [
        "<h1>Similar submissions</h1>",
        "<p>Pairs that share at least the threshold's fraction of either one's code (the template's "
        "code left out), most similar first. Shared code is highlighted; names and whitespace do not "
        "matter to the comparison.</p>",
    ]
    if not pairs:
        body.append("<p>No pair of submissions is above the threshold.</p>")
    else:
        header = "<tr><th>a</th><th>b</th><th>of a</th><th>of b</th><th>shared</th></tr>"
        body.append(f"<table>{header}{rows}</table>")
    for n, p in enumerate(pairs[:MAX_PAIRS_SHOWN]):
        sides = "".join(
            f"<div><h3>{e(name)}: {share:.0%} shared</h3>"
            f"<pre><code>{_highlighted(submission_code(paths[name]), spans)}</code></pre></div>"
            for name, share, spans in ((p.a, p.similarity_a, p.spans_a), (p.b, p.similarity_b, p.spans_b))
        )
        body.append(f'<h2 id="pair-{n}">{e(p.a)} and {e(p.b)}</h2><div class="pair">{sides}</div>')
    if len(pairs) > MAX_PAIRS_SHOWN:
        body.append(f"<p>The other {len(pairs) - MAX_PAIRS_SHOWN} pairs are listed in {CSV_FILE}.</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Similar submissions</title>'
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_similarity(pairs: Sequence[Pair], sources: Sequence[Tuple[str, str]], out: str) -> List[str]:
    """OUT/similarity.csv (every pair; a header alone when none) and OUT/similarity.html (the pairs
    side by side, shared code highlighted), each written whole or not at all."""
    files.check_writable_folder(out)
    csv_path, html_path = os.path.join(out, CSV_FILE), os.path.join(out, HTML_FILE)

    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(CSV_COLUMNS)
    for p in pairs:
        writer.writerow(
            [files.spreadsheet_safe(p.a), files.spreadsheet_safe(p.b)]
            + [f"{share:.3f}" for share in (p.similarity_a, p.similarity_b, p.similarity)]
        )
    # UTF-8 whatever the locale: students' names and comments are often not ASCII
    for path, text in ((csv_path, table.getvalue()), (html_path, _html(pairs, dict(sources)))):
        files.atomic_write(path, lambda f: f.write(text.encode("utf-8")), binary=True)
    return [csv_path, html_path]
