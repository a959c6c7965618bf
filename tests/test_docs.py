"""The docs' measured numbers keep their date and the command behind them, every command they quote
parses with the parser that will read it, and the README's links (outside the mkdocs site, which
checks docs/ itself with `mkdocs build --strict`) lead somewhere.

A section (the text under one heading) that quotes a measurement (seconds, minutes, a speed ratio
such as 0.61x, GFLOP/s, memory) or holds a timing table must also give a date (YYYY-MM-DD) and
either the command that produced the figures (`jaxtrainer ...`, `python ...`, in backquotes or a
code block) or, for a one-off experiment whose code is gone, the words "no script reproduces".
"""

import argparse
import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# Sections whose figures are not this project's measurements.
QUOTED = {
    ("homework.md", "The experiments"): "students' reported wall times, read from their reports",
    ("grading.md", "Outputs"): "the output cap, a setting",
    ("grading.md", "The threat model: what a submission can and cannot do"): "the sandbox's limits, settings",
}

MEASURED = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s?(?:s|ms|min|seconds|minutes|GFLOP/s|GB|MB)|x)(?![\w-])"
)
TIMING_COLUMN = re.compile(r"s/epoch|\bm?s$|seconds|wall time|ms per step|RSS", re.I)
DATE = re.compile(r"\b20\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b")
COMMAND = re.compile(r"(?:`|^)(?:[A-Z_]+=\S+ )*(?:jaxtrainer|python3?) [^`\n]*", re.M)
NO_SCRIPT = re.compile(r"no\s+script\s+reproduces")  # across a line break too


def sections(text: str):
    """(heading, body) for each heading outside code blocks, and ("", the text above the first)."""
    heading, body, fenced = "", [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            yield heading, "\n".join(body)
            heading, body = line.lstrip("#").strip(), []
            continue
        body.append(line)
    yield heading, "\n".join(body)


def measured(body: str) -> list:
    """The measured figures quoted in `body` (code blocks included: `time jaxtrainer ...  # 300.7 s`),
    and the headers of its timing tables. Inline code is left out: it quotes messages and options."""
    lines = body.splitlines()
    headers = [
        header
        for header, below in zip(lines, lines[1:])
        if below.startswith("|---") and any(TIMING_COLUMN.search(c.strip()) for c in header.split("|"))
    ]
    return MEASURED.findall(re.sub(r"`[^`\n]*`", "", body)) + headers


def test_the_checker_tells_a_dated_sourced_figure_from_a_bare_one():
    assert measured("It took 3.54 s, 0.61x PyTorch.") == ["3.54 s", "0.61x"]
    assert measured("A 3x3 kernel, 4 x 4 pixels, (16, 32, 45), lr 1e-3, `--epochs 3`.") == []
    assert measured("| model | s/epoch |\n|---|---|\n| mlp | 0.15 |") == ["| model | s/epoch |"]
    assert measured("| name | images |\n|---|---|\n| svhn | 73,257 |") == []
    assert measured("```bash\ntime jaxtrainer grade s/*.py  # 300.7 s wall\n```") == ["300.7 s"]
    assert measured("a `timed out after 300 s` status") == []
    assert DATE.search("on 2026-12-02") and not DATE.search("on 2026-13-02")
    assert COMMAND.search("`jaxtrainer bench --network cnn`")
    assert COMMAND.search("JAX_X=1 jaxtrainer homework")
    assert not COMMAND.search("the jaxtrainer package")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_measured_figure_has_its_date_and_command(page):
    bare = []
    for heading, body in sections(page.read_text(encoding="utf-8")):
        figures = measured(body)
        if not figures or (page.name, heading) in QUOTED:
            continue
        missing = [
            what
            for what, found in (
                ("a date (YYYY-MM-DD)", DATE.search(body)),
                ("a command (or 'no script reproduces')", COMMAND.search(body) or NO_SCRIPT.search(body)),
            )
            if not found
        ]
        if missing:
            bare.append(f"{page.name} '{heading}' quotes {figures[:3]} without {' and '.join(missing)}")
    assert not bare, "\n".join(bare)


def test_the_readme_links_lead_to_files_and_headings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        if not (ROOT / path).exists():
            broken.append(f"{target}: no file {path}")
        elif anchor:
            headings = [slugify(h, "-") for h, _ in sections((ROOT / path).read_text(encoding="utf-8"))]
            if anchor not in headings:
                broken.append(f"{target}: no heading #{anchor} in {path}")
    assert not broken, "\n".join(broken)


# A command as a reader would copy it: `jaxtrainer WORD...` or `python -m` one of our modules, in a code
# block (continuation lines joined) or in inline code, up to a shell operator, a quote or a comment.
QUOTED_COMMAND = re.compile(
    r"(?<![\w.])(?:jaxtrainer [a-z]|python3? -m (?:benchmarks|torch_compat|jaxtrainer)\b)"
)


def quoted_commands(text: str) -> list:
    """The commands of `text` (`...` and shell variables, which stand for the reader's own, left out)."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()] + inline
    found = []
    for line in lines:
        for part in re.split(r"&&|\|\||[|;`\"]| #", line.replace("\\|", "|")):
            start = QUOTED_COMMAND.search(part)
            if start and not part[: start.start()].rstrip().endswith(("from", "import")):
                words = shlex.split(re.sub(r"\$\{?\w+\}?", "0", part[start.start() :]))
                found.append([word for word in words if word != "..."])
    return found


class _Parsed(Exception):
    """Raised in place of running a benchmark once its arguments parsed."""


def parse(words: list, monkeypatch) -> None:
    """Parse `words` with the parser that reads them: the CLI's, or the module's own (its `main` is
    called with argparse stopped right after a successful parse). argparse exits 2 on a bad command."""
    if words[0] == "jaxtrainer" or words[2] == "jaxtrainer":
        from jaxtrainer import cli

        argv = words[1:] if words[0] == "jaxtrainer" else words[3:]
        if all(not word.startswith("-") for word in argv):  # a command named in prose: it exists
            argv = [*argv, "--help"]
        cli.build_parser().parse_args(argv)
        return
    module, argv = importlib.import_module(words[2]), words[3:]
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parse_args(self, args, namespace)
        raise _Parsed

    with monkeypatch.context() as patch, pytest.raises(_Parsed):
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        patch.setattr(sys, "argv", [words[2], *argv])  # for a main() that reads sys.argv
        module.main(argv) if module.main.__code__.co_argcount else module.main()


def test_the_command_finder_takes_what_a_reader_would_copy():
    text = (
        "Run `jaxtrainer train --epochs 3` or\n```bash\nsrun jaxtrainer sweep --lr 1e-2 \\\n"
        "  --process-id $RANK ... && python -m benchmarks.sweep_bench --k 2  # note\n"
        "from jaxtrainer import Spec\n```\n"
        "| `jaxtrainer lab bayesnet\\|mlp` | labs |"
    )
    assert quoted_commands(text) == [
        ["jaxtrainer", "sweep", "--lr", "1e-2", "--process-id", "0"],
        ["python", "-m", "benchmarks.sweep_bench", "--k", "2"],
        ["jaxtrainer", "train", "--epochs", "3"],
        ["jaxtrainer", "lab", "bayesnet"],
    ]


def test_the_parse_check_refuses_an_unknown_flag(monkeypatch, capsys):
    for words in (
        ["jaxtrainer", "train", "--models", "mlp"],
        ["python", "-m", "benchmarks.sweep_bench", "--models", "x"],
    ):
        with pytest.raises(SystemExit) as exit:
            parse(words, monkeypatch)
        assert exit.value.code == 2 and "--models" in capsys.readouterr().err


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_quoted_command_parses(page, monkeypatch, capsys):
    refused = []
    for words in quoted_commands(page.read_text(encoding="utf-8")):
        try:
            parse(words, monkeypatch)
        except SystemExit as exit:
            error = capsys.readouterr().err.strip().splitlines()
            placeholder = re.search(r"invalid choice: '([A-Z_]+)'", error[-1] if error else "")
            if exit.code and not placeholder:  # `jaxtrainer lab NAME --help`: NAME is the reader's
                refused.append(f"{' '.join(words)}: {error[-1] if error else exit.code}")
    assert not refused, "\n".join(refused)
