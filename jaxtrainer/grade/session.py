"""One grading session, from the TA's arguments to the class's tables: the checks before any
minute is spent, the shared inputs (data, rubric, sandbox), the runs, the reports as each run
finishes, and on Ctrl-C, SIGTERM or SIGHUP (the CLI turns each into a KeyboardInterrupt here, in a
command without JAX in the main thread): every run killed, the scratch folder removed, and
grades.json/grades.csv holding the submissions finished so far."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import NamedTuple, Sequence

from .. import files


class Session(NamedTuple):
    """A `grade` command's arguments, already checked (`cli/grade.py`); `run` does the grading."""

    submissions: Sequence[str]
    out: str
    data: str | None
    timeout: float
    jobs: int
    tests: str | None
    variant: str | None
    rubric: str | None
    template: str | None
    threshold: float
    gradescope: bool
    sandbox: str
    progress: bool

    def run(self) -> int:
        """Grades every submission (each report written as it finishes), then the class's tables and the
        similarity pairs; returns the exit status, 130 when interrupted."""
        from tqdm.auto import tqdm

        from . import rubric, runner, sandbox, submissions
        from .report import write_grades, write_report

        found = submissions.find(self.submissions)
        grading_rubric = rubric.load(self.rubric)
        files.check_writable_folder(self.out, "--out")
        sandbox.check(self.sandbox)
        if self.sandbox == "none":
            print(
                "jaxtrainer: warning: --sandbox none: submissions run as you, with your files; "
                "only for trusted code"
            )
        finished: list = []
        scratch = tempfile.mkdtemp(prefix="jaxtrainer-grade-")
        os.chmod(scratch, 0o711)  # the runs' uids reach their own folder inside, and list nothing
        bar = tqdm(total=len(found), desc="grading", unit="submission", disable=not self.progress)
        try:
            settings = self._runner_settings(grading_rubric, scratch)

            def on_done(graded: dict) -> None:
                write_report(graded, self.out)
                if self.gradescope:
                    from .gradescope import write_results

                    write_results(
                        graded,
                        os.path.join(runner.submission_folder(self.out, graded["name"]), "results.json"),
                    )
                finished.append(graded)
                bar.set_postfix_str(f"{graded['name']}: {graded['score']:g}")
                bar.update()

            results = runner.grade_all(found, settings, self.jobs, on_done)
        except KeyboardInterrupt:
            bar.close()
            order = {s.name: i for i, s in enumerate(found)}
            write_grades(sorted(finished, key=lambda g: order[g["name"]]), self.out)
            print(
                f"jaxtrainer: interrupted; {len(finished)} of {len(found)} graded; reports in {self.out}",
                flush=True,
            )
            return 130
        finally:
            bar.close()
            shutil.rmtree(scratch, ignore_errors=True)
        paths = write_grades(results, self.out)
        paths += self._similarity(found)
        for graded in results:
            print(f"{graded['score']:6.2f} / {graded['max_score']:g}  {graded['name']}  ({graded['status']})")
        print(
            f"wrote {', '.join(paths)} and {len(results)} report.md under "
            f"{os.path.join(self.out, 'submissions')}"
        )
        failed = [graded["name"] for graded in results if graded["status"] == "grader error"]
        if failed:
            print(
                f"jaxtrainer: warning: the grader itself failed on {len(failed)} submission"
                f"{'s' * (len(failed) > 1)} ({', '.join(failed[:5])}{', ...' * (len(failed) > 5)}): their "
                "scores lack those checks; each one's grader_error.log holds the traceback to report"
            )
            return 1
        return 0

    def _runner_settings(self, grading_rubric, scratch: str):
        """What every submission's run shares: the data (written into `scratch` unless given),
        the output folder, the limits, the sandbox and the rubric."""
        from . import runner, sandbox

        return runner.Settings(
            data=os.path.abspath(self.data) if self.data else _default_data(scratch),
            loader_data=_loader_data(scratch),
            out=os.path.abspath(self.out),
            timeout=self.timeout,
            tests=None if self.tests is None else os.path.abspath(self.tests),
            threads=max(1, (os.cpu_count() or 1) // self.jobs),
            variant=self.variant,
            sandbox=sandbox.Sandbox(self.sandbox),
            rubric=grading_rubric,
            scratch=scratch,
        )

    def _similarity(self, found) -> list:
        if len(found) < 2:
            return []
        from .similarity import find_similar, write_similarity

        sources = [(s.name, s.path) for s in found]
        pairs = find_similar(sources, template=self.template, threshold=self.threshold)
        return write_similarity(pairs, sources, self.out)


def _default_data(scratch: str) -> str:
    """The embedded digits in the rotated-PNG format: the tensor year's ./rotated_fashion_mnist."""
    from jaxtrainer.data import DEFAULT_FOLDER, digits

    return digits.write_folder(os.path.join(scratch, DEFAULT_FOLDER))["out"]


def _loader_data(scratch: str) -> str:
    """Small SVHN and CIFAR-10 files in torchvision's own formats: the loader year's ./data."""
    folder = os.path.join(scratch, "loader-data")
    os.makedirs(folder)
    from .loader_data import write_loader_data

    write_loader_data(folder)
    return folder
