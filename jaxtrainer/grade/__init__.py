"""`jaxtrainer grade`: check a class's PyTorch solutions against the JAX reference by differential
testing, and say in the student's terms what is wrong.

This package orchestrates and never imports PyTorch: `submissions` finds and names them, `runner`
runs each in its own subprocess (the checks themselves are `torch_compat.grade_checks`), `report`
writes grades.json, grades.csv and each report.md, `plan` holds the check ids and the networks the
checks build, `cli` the command.
"""
