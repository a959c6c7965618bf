"""The one resume rule, a pure function of what a run folder holds and what is asked: the same
identity continues, another is refused naming the fields, "overwrite" removes only what the old run
wrote; fewer epochs than held, or files but no run, are refused; "resume" needs a run; "append" (the
facade's) needs exactly the epochs its trainer saved, as it trains its weights in memory."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from ..errors import InputError
from .manifest import CHECKPOINT, FORMAT, MANIFEST, RunError, differences, inside, problem

MODES = ("continue", "resume", "overwrite", "append")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What opening does: `remove` (None: nothing; else the old run's outputs, then its checkpoint and
    manifest) first, then a run holding `epochs_done` epochs and `outputs`."""

    epochs_done: int = 0
    outputs: Tuple[str, ...] = ()
    remove: Tuple[str, ...] | None = None


def plan(
    manifest, checkpoint, identity: dict, mode: str, epochs=None, foreign=(), hint="--overwrite", folder="F"
):
    """The Plan for a folder holding `manifest` (run.json; None: none; a str: why it is unreadable)
    and `checkpoint` ((epoch, identity), None or a str), asked to open `identity` in `mode` for
    `epochs` (None: not checked). `foreign`: its visible entries; `hint`: how to start over."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if manifest is None and checkpoint is not None:
        manifest = {"format": "older", "identity": {}}  # a checkpoint without a manifest
    if mode == "overwrite":
        if manifest is None:
            return Plan(remove=None)
        listed = manifest.get("outputs") if isinstance(manifest, dict) else None
        return Plan(remove=tuple(r for r in listed if inside(r)) if isinstance(listed, list) else ())
    if manifest is None:
        if mode == "resume":
            raise RunError(f"no run to resume in {folder}: it holds no {MANIFEST}")
        if foreign:
            shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RunError(
                f"{folder} holds files but no jaxtrainer run ({shown}); choose a new or empty "
                f"folder, or use {hint} to write over them"
            )
        return Plan()
    done = _continued(manifest, checkpoint, identity, hint, folder)
    if epochs is not None and mode == "append" and epochs != done:
        raise RunError(
            f"{folder} holds a run of {done} epochs: pass resume=True to continue it or {hint} to start over"
        )
    if epochs is not None and epochs < done:
        raise RunError(
            f"{folder} already holds {done} epochs of this run and {epochs} were "
            f"asked: ask {done} or more to continue it, or use {hint} to start over"
        )
    return Plan(epochs_done=done, outputs=tuple(manifest["outputs"]))


def _continued(manifest, checkpoint, identity: dict, hint: str, folder: str) -> int:
    """The epochs of the run in the folder, when this run may continue it."""
    start_over = f"use {hint} to start over"
    if isinstance(manifest, str):
        raise RunError(f"{manifest}; {start_over}")
    if manifest.get("format") != FORMAT:
        raise RunError(f"{folder} holds a run written by another version of jaxtrainer; {start_over}")
    if why := problem(manifest):
        raise RunError(f"{folder}/{MANIFEST} is not a valid run manifest ({why}); {start_over}")
    saved = manifest["identity"]
    if saved.get("kind") != identity.get("kind"):
        raise RunError(
            f"{folder} holds a {saved.get('kind')!r} run, not a {identity.get('kind')!r} "
            f"one; use {hint} to replace it, or choose another folder"
        )
    if changed := differences(saved, identity):
        raise RunError(
            f"{folder} holds another run; refusing to continue it with a different configuration "
            f"({'; '.join(changed)}). Run the command that made it to continue "
            f"it, {start_over}, or choose another folder"
        )
    if isinstance(checkpoint, str):
        raise RunError(f"{checkpoint}; {start_over}")
    recorded = manifest["epochs_done"]
    if checkpoint is None:  # the checkpoint is renamed into place before the manifest: it is the truth
        if recorded:
            why = f"{folder}/{CHECKPOINT} is missing although {MANIFEST} records {recorded} epochs"
            raise RunError(f"{why}; {start_over}")
        return 0
    if differences(checkpoint[1], identity):
        raise RunError(f"{folder}/{CHECKPOINT} does not match {MANIFEST}; {start_over}")
    return checkpoint[0]
