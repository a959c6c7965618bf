"""`jaxtrainer grade`: grade a class's PyTorch solutions against the JAX reference by differential
testing, and say in the student's terms what is wrong. Every submission is treated as hostile code.

- `session`: one grading session (inputs, runs, tables, interrupts);
- `submissions`: which submissions, and their names;
- `sandbox`: bubblewrap around an unprivileged uid, limits, capped output, no process left;
- `collector` and `sandbox_boot`: standalone files run INSIDE the sandbox: call the student's code
  on the grader's inputs and hand back raw values (torchvision offline, beside the CPU torch);
- `runner`: one submission from its folder to its verdicts (`torch_compat.grade_checks` judges,
  in the grader's process); `plan`: the check ids, the builders' cases and each run's request;
- `rubric`: points per question; `report`: grades.json, grades.csv, report.md;
- `similarity`: similar submissions (copydetect); `gradescope`: Gradescope's results.json;
- `loader_data`: the loader year's SVHN/CIFAR-10 files in torchvision's formats.

The command's arguments are `jaxtrainer/cli/grade.py`.
"""
