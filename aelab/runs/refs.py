"""The run handle: a run reference resolved once, at the edge, and confined to the runs folder.

Every run the CLI, the manager and the app act on is named by a user (a command
line argument, a page selection, a query string). ``RunRef.checked`` turns that
name into a handle whose folder is, after resolving symbolic links, a *direct
child* of the resolved runs folder; anything else (``.``, ``..``, an absolute
path elsewhere, a link pointing out of the folder, a dot-folder) is refused with
one sentence. On the command line (``anywhere=True``) a path to a folder that holds a run
aelab wrote (``folder.is_run_folder``: what ``train --out`` makes) is accepted wherever it
is, unless the path itself is a link; its handle's root is then the folder's parent. The
layers below take the handle instead of a bare path, read the
run's config once (``config``) and hash its weights once per weights file
(``weights_sha256``, keyed by the file's inode, mtime and size).

A ``RunRef`` is ``os.PathLike`` (its folder), so ``Path(ref)``, ``ref / "x"`` and
``ref.name`` work wherever a run folder path did.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from aelab.errors import RunError
from aelab.runs.folder import WEIGHTS, is_run_folder, read_config, read_status, runs_root


@dataclass(frozen=True)
class RunRef:
    """A run folder confined to its runs folder: ``root / run_id`` (both resolved)."""

    root: Path
    run_id: str

    # --- construction: the three differ exactly in the confinement check ---
    # checked: always (what a user typed); unchecked: never (a folder the program holds);
    # checked_if_text: a string is checked, a Path or RunRef the program holds is not.
    @classmethod
    def checked(cls, ref: "str | os.PathLike | RunRef", runs_dir: str | os.PathLike | None = None,
                anywhere: bool = False) -> "RunRef":
        """The run named ``ref`` (a run id, or a path to a folder directly inside the runs
        folder: ``runs_dir``, else ``$AELAB_RUNS``, else ./checkpoints); a RunError otherwise.

        ``anywhere``: also a path (never a bare id) to a run folder elsewhere, such as one
        made by ``train --out`` (what a user names on the command line; the app never sets
        it). A ``RunRef`` outside the runs folder is checked the same way (someone resolved it
        with ``anywhere``)."""
        if isinstance(ref, RunRef) and ref.root != runs_root(runs_dir).resolve():
            anywhere = True
        given = runs_root(runs_dir)
        root = given.resolve()
        text = os.fspath(ref.path if isinstance(ref, RunRef) else ref)
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        if not text.strip() or "\x00" in text:
            raise RunError("a run id cannot be empty; list the runs with `python -m aelab runs list`")
        if text in (".", ".."):
            raise RunError(f"{text!r} is not a run id; name one run of {given} "
                           f"(see `python -m aelab runs list`)")
        plain = "/" not in text and not (os.altsep and os.altsep in text)
        if plain and text.startswith("."):
            raise RunError(f"{text!r} is not a run id (run ids never start with a dot)")
        candidate = root / text if plain else Path(text).expanduser().absolute()
        if anywhere and not plain:
            elsewhere = cls._elsewhere(text, candidate, root)
            if elsewhere is not None:
                return elsewhere
        if not root.is_dir():
            raise RunError(f"no run {text!r}: the runs folder {given} does not exist")
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, a link loop, a bad name
            if plain:
                raise RunError(f"no run {text!r} in {given} (see `python -m aelab runs list`)") from None
            raise RunError(f"no run folder {text!r}") from None
        if real.parent != root or real.name.startswith("."):
            if _is_link(candidate):
                raise RunError(f"run {text!r} is a symbolic link to {real}, outside the runs folder "
                               f"{root}; refused (remove the link itself with rm)")
            if anywhere:
                raise RunError(f"{text!r} is not a run: it is neither a folder directly inside "
                               f"the runs folder {root} nor a folder holding the config.json and "
                               f"status.json of a run (as `train --out` writes)")
            raise RunError(f"{text!r} is not a run of the runs folder {root}: a run is a folder "
                           f"directly inside it (use --runs-dir to choose another runs folder)")
        if not real.is_dir():
            raise RunError(f"no run {text!r}: {real} is not a folder")
        return cls(root, real.name)

    @classmethod
    def _elsewhere(cls, text: str, candidate: Path, root: Path) -> "RunRef | None":
        """The handle of a run folder outside ``root`` named by the path ``text``, or None
        when the path names no such folder (the confined rules then decide)."""
        named = Path(os.path.normpath(candidate))  # the folder the text names, read as typed
        try:
            real = candidate.resolve(strict=True)
            # the named folder itself, not a link, nor a path through a link and back (link/..)
            if named.is_symlink() or real != named.parent.resolve(strict=True) / named.name:
                return None
        except (OSError, RuntimeError):
            return None
        if real.parent == root or real.name.startswith(".") or not real.is_dir():
            return None
        return cls(real.parent, real.name) if is_run_folder(real) else None

    @classmethod
    def unchecked(cls, run: "str | os.PathLike | RunRef") -> "RunRef":
        """A handle for a run folder the library already holds (a RunRef passes through; a
        path becomes a handle in its own parent folder). Not for user input: use ``checked``."""
        if isinstance(run, RunRef):
            return run
        real = Path(run).resolve()
        return cls(real.parent, real.name)

    @classmethod
    def checked_if_text(cls, run: "str | os.PathLike | RunRef",
                        runs_dir: str | os.PathLike | None = None) -> "RunRef":
        """A library entry point's run argument as a handle: a RunRef as is, a ``Path`` the
        program holds via ``unchecked``, and a string (user input: a run id or path) via
        ``checked``."""
        if isinstance(run, RunRef):
            return run
        if isinstance(run, os.PathLike) and runs_dir is None:
            return cls.unchecked(run)
        return cls.checked(run, runs_dir)

    # --- what it names ---
    @property
    def path(self) -> Path:
        """The run folder."""
        return self.root / self.run_id

    @property
    def name(self) -> str:
        """The run id (as ``Path.name`` of the folder)."""
        return self.run_id

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        """True while the run folder is there (a deleted run's handle outlives it)."""
        return self.path.is_dir()

    # --- what it holds, read once ---
    @functools.cached_property
    def config(self) -> dict:
        """The validated ``config.json`` (read on first use, then kept)."""
        return read_config(self.path)

    def status(self) -> dict:
        """The current ``status.json`` (read afresh each call: it changes while a run trains)."""
        return read_status(self.path)

    def weights_sha256(self) -> str:
        """SHA-256 of the weights file, computed once per file (inode, mtime, size)."""
        return weights_hash(self.path)

    def load_model(self, device="cpu"):
        """The run's trained model in eval mode (see ``runs.load_model``)."""
        from aelab.runs.folder import load_model

        return load_model(self.path, device, config=self.config)


def _is_link(path: Path) -> bool:
    """True if ``path`` or any folder on the way to it is a symbolic link."""
    for p in (path, *path.parents):
        try:
            if p.is_symlink():
                return True
        except OSError:
            return False
    return False


def weights_hash(run_dir: "str | os.PathLike") -> str:
    """SHA-256 of the run's weights file (the key every cache is checked against)."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise RunError(f"no checkpoint yet: {WEIGHTS} does not exist in {Path(run_dir)}")
    stat = path.stat()  # weights are replaced atomically, so a new file has a new inode/mtime
    return _file_sha256(str(path.resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, inode: int, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
