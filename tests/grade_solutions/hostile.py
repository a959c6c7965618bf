"""Hostile submissions: each is `correct.py` with an attack run at import (the paths it aims at are
the real ones of the test's grading run: a student may know them). Each must change nothing but its
own verdict, touch no file outside its folder and leave no process behind; where the attack fails
quietly, its score stays that of its honest code (full marks).

`write(folder, targets)` writes them as `<name>.py` (or `<name>/` with extra files) and returns
{name: path}; `targets` holds the paths: out, data, other (another submission's file), source (a
file of the grader's own code), marker (a file outside every folder the run may write).
"""

from __future__ import annotations

import os
from typing import Dict

from .mistakes import variant

# name: the code run at import, before the honest solution. {out}, {data}, ... are the targets.
ATTACKS: Dict[str, str] = {
    "forges_result_file": """
import json, os
os.makedirs('.grade-out', exist_ok=True)
json.dump({{'sections': {{'import': {{'names': ['NetworkConfiguration', 'Trainer']}}}}, 'running': None,
           'score': 1000}}, open('.grade-out/result.json', 'w'))
for path in ('{out}/grades.json', '/grader/request.json'):
    try:
        open(path, 'w').write('{{"submissions": [{{"name": "forges_result_file", "score": 1000}}]}}')
    except OSError as e:
        print('blocked', path, type(e).__name__)
os._exit(0)
""",
    "patches_the_checks": """
for name in ('jaxtrainer', 'torch_compat.grade_checks', 'jaxtrainer.grade.plan'):
    try:
        __import__(name)
        print('IMPORTED', name)
    except ImportError:
        print('blocked import of', name)
""",
    "edits_grader_source": """
for path in ('{source}', '{other}'):
    try:
        with open(path, 'a') as f:
            f.write('\\nSCORE = 1000\\n')
        print('EDITED', path)
    except OSError as e:
        print('blocked', path, type(e).__name__)
""",
    "detached_rewriter": """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(200):
            for path in ('{out}/grades.json', '{out}/grades.csv'):
                try:
                    open(path, 'w').write('{{"submissions": [{{"name": "detached_rewriter", "score": 1000}}]}}')
                except OSError:
                    pass
            open('{marker}', 'a').write('alive\\n') if os.path.isdir(os.path.dirname('{marker}')) else None
            time.sleep(0.5)
    os._exit(0)
""",
    "reads_others": """
import os
for path in ('{other}', '{out}', '{data}', '/proc/1/environ'):
    try:
        found = os.listdir(path) if os.path.isdir(path) else open(path).read(200)
        print('READ', path, str(found)[:80])
    except OSError as e:
        print('blocked', path, type(e).__name__)
""",
    "writes_outside": """
import os, shutil
for path in ('{marker}', '{out}/injected.txt', '{data}/train/0_0.png', './rotated_fashion_mnist/train/0_0.png'):
    try:
        open(path, 'w').write('overwritten')
        print('WROTE', path)
    except OSError as e:
        print('blocked', path, type(e).__name__)
try:
    shutil.rmtree('./rotated_fashion_mnist/test')
    print('REMOVED the data')
except OSError as e:
    print('blocked rmtree', type(e).__name__)
""",
    "memory_bomb": """
try:
    hog = bytearray(64 << 30)
    print('ALLOCATED 64 GB')
except MemoryError:
    print('blocked: MemoryError')
""",
    "fork_bomb": """
import os, time
if os.fork() == 0:
    children = 0
    try:
        while children < 100000:
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
            children += 1
    except OSError as e:
        print('blocked after', children, 'forks:', type(e).__name__, flush=True)
    os._exit(0)
time.sleep(1)
""",
    "output_flood": """
import sys
line = 'x' * 1023 + '\\n'
for _ in range(600 * 1024):
    sys.stdout.write(line)
sys.stdout.flush()
""",
    "kills_the_parent": """
import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL) if pid != -1 else None
        print('signalled', pid)
    except OSError as e:
        print('blocked kill', pid, type(e).__name__)
""",
    "exits_at_import": """
import os
os._exit(0)
""",
    "network": """
import socket
try:
    socket.create_connection(('pypi.org', 443), timeout=3)
    print('CONNECTED')
except OSError as e:
    print('blocked network', type(e).__name__)
""",
    "leaves_a_sleeper": """
import subprocess
subprocess.Popen(['sleep', '1000'])
""",
    "garbles_its_result_at_exit": """
import atexit, os
def garble():
    with open('.grade-out/result.json', 'w') as f:
        f.write('{{"sections": {{"import": 5}}')
atexit.register(garble)
""",
    "nests_its_result_deep_at_exit": """
import atexit
def nest():
    with open('.grade-out/result.json', 'w') as f:
        f.write('{{"sections": {{"import": ' + '[' * 200000 + ']' * 200000 + '}}}}')
atexit.register(nest)
""",
    "leaves_a_fifo_for_its_result": """
import atexit, os
def fifo():
    os.remove('.grade-out/result.json')
    os.mkfifo('.grade-out/result.json')
atexit.register(fifo)
""",
    "links_its_result_folder_to_the_system": """
import atexit, os, shutil
def link():
    shutil.rmtree('.grade-out')
    os.symlink('/etc', '.grade-out')
atexit.register(link)
""",
}

# Folder submissions: (extra files beside solution.py, attack or None).
FOLDERS: Dict[str, Dict[str, str]] = {
    "ships_sitecustomize": {
        "sitecustomize.py": "open('{marker}', 'w').write('sitecustomize ran')\n",
        "usercustomize.py": "open('{marker}', 'w').write('usercustomize ran')\n",
        "conftest.py": "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n",
        "pytest.ini": "[pytest]\naddopts = -p no:junitxml\n",
    },
    "grades.json": {},  # named like an output file
    "links_to_others": {  # a link the grader (root) would follow when it copies the folder
        "stolen.py": "-> {other}",
        "peek.py": "try:\n    import stolen\n    print('READ stolen.py', stolen.__file__)\nexcept ImportError:\n"
        "    print('blocked: stolen.py did not come along')\n",
    },
}


def write(folder: str, targets: Dict[str, str]) -> Dict[str, str]:
    os.makedirs(folder, exist_ok=True)
    honest = variant("correct")
    paths = {}
    for name, attack in ATTACKS.items():
        paths[name] = os.path.join(folder, f"{name}.py")
        code = honest.replace("import copy\n", "import copy\n" + attack.format(**targets) + "\n", 1)
        with open(paths[name], "w") as f:
            f.write(code)
    for name, extra in FOLDERS.items():
        paths[name] = os.path.join(folder, name)
        os.makedirs(paths[name], exist_ok=True)
        with open(os.path.join(paths[name], "solution.py"), "w") as f:
            f.write(honest)
        for file, text in extra.items():
            if text.startswith("-> "):
                os.symlink(text[3:].format(**targets), os.path.join(paths[name], file))
                continue
            with open(os.path.join(paths[name], file), "w") as f:
                f.write(text.format(**targets))
        if name == "links_to_others":
            with open(os.path.join(paths[name], "solution.py"), "a") as f:
                f.write("\nimport peek  # noqa: E402,F401\n")
    return paths
