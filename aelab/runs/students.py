"""Students a class server knows by name (no streamlit here; ``aelab.ui.identity`` asks).

A student is a random id, with the name they chose once. The browser keeps them as a token
``<id>.<name, base64url>.<signature>``: an HMAC-SHA256 of id and name under the server's
secret (``secret_path``, made on first use, readable by the server's user only), so a
cookie edited by hand, or a token copied from another server, is refused. A name is held by
the first id that claims it (``<runs>/.students/<hash of the name>.json``, created with
O_EXCL so two students claiming at once cannot both win): typing a name someone else holds
is refused, so a name never gives access to another's runs.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from aelab.errors import AelabError

STUDENTS = ".students"
NAME_CHARS = re.compile(r"^[\w][\w .'\-]*$")  # letters (any script), digits, space . ' - _
MAX_NAME = 30


class StudentNameError(AelabError):
    """A name that cannot be used, as one sentence."""


@dataclass(frozen=True)
class Student:
    id: str          # random, never shown: what a run's owner.json records
    name: str = ""   # empty until the student chose one


def secret_path(runs_dir) -> Path:
    """Where the signing key of a runs folder is kept: in aelab's own data folder
    (``$AELAB_DATA``), named by the folder's path, never inside the runs folder (the shipped
    ``checkpoints/`` is a checkout nobody's page visit may write into)."""
    from aelab.data.datasets import data_dir

    key = hashlib.sha256(str(Path(runs_dir).resolve()).encode()).hexdigest()[:32]
    return data_dir() / "secrets" / key


def server_secret(runs_dir) -> bytes:
    """The server's signing key, made once per runs folder (so tokens outlive a restart)."""
    path = secret_path(runs_dir)
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".secret.", dir=path.parent)  # mode 0600
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic and never over another server's secret
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return bytes.fromhex(path.read_text().strip())


def clean_name(raw: str) -> str:
    """The name as kept (NFC, inner spaces single), or StudentNameError saying what is allowed."""
    name = " ".join(unicodedata.normalize("NFC", str(raw)).split())
    if not name:
        raise StudentNameError("Type a name first (the one your teacher knows you by).")
    if len(name) > MAX_NAME or not NAME_CHARS.match(name):
        raise StudentNameError(f"A name is 1 to {MAX_NAME} letters, digits, spaces, dots, hyphens or "
                         f"apostrophes; {name[:40]!r} is not.")
    return name


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _signature(secret: bytes, student: Student) -> str:
    return hmac.new(secret, f"{student.id}|{student.name}".encode(), hashlib.sha256).hexdigest()[:32]


def token_for(runs_dir, student: Student) -> str:
    """The token the browser keeps (cookie-safe: letters, digits, ``-_.``)."""
    return f"{student.id}.{_b64(student.name)}.{_signature(server_secret(runs_dir), student)}"


def _holder_file(runs_dir, name: str) -> Path:
    key = hashlib.sha256(name.casefold().encode()).hexdigest()[:32]
    return Path(runs_dir) / STUDENTS / f"{key}.json"


def _record(runs_dir, name: str) -> dict | None:
    try:
        record = json.loads(_holder_file(runs_dir, name).read_text())
        return record if isinstance(record.get("id"), str) and isinstance(record.get("name"), str) else None
    except (OSError, ValueError, AttributeError):
        return None


def holder(runs_dir, name: str) -> str | None:
    """The id holding ``name`` (compared without case), or None while it is free."""
    record = _record(runs_dir, name)
    return record["id"] if record else None


def from_token(runs_dir, token: str | None) -> Student | None:
    """The student of a token this server signed, whose name is still theirs; else None
    (a forged, edited or foreign token is simply not anybody)."""
    try:
        sid, name_b64, signature = str(token).split(".")
        student = Student(sid, _unb64(name_b64))
    except (ValueError, UnicodeDecodeError):
        return None
    if not re.fullmatch(r"[0-9a-f]{16}", sid):
        return None
    if not hmac.compare_digest(signature, _signature(server_secret(runs_dir), student)):
        return None
    if student.name and holder(runs_dir, student.name) != sid:
        return None
    return student


def new_student() -> Student:
    return Student(secrets.token_hex(8))


def claim(runs_dir, student: Student, raw_name: str) -> Student:
    """``student`` with the name ``raw_name``, recorded as theirs; StudentNameError if it is not a
    valid name, or another student holds it (whatever its case)."""
    name = clean_name(raw_name)
    path = _holder_file(runs_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if holder(runs_dir, name) == student.id:
            return Student(student.id, name)
        raise StudentNameError(f"The name {name} is already taken in this class; add an initial or a "
                         f"number (e.g. {name} B.), or ask the teacher.") from None
    with os.fdopen(fd, "w") as f:
        json.dump({"id": student.id, "name": name}, f)
    return Student(student.id, name)


def token_of_name(runs_dir, raw_name: str) -> str:
    """For the teacher's links: the token of the student holding the name, or of a new
    student given it while it is free (a student takes their name to another computer)."""
    name = clean_name(raw_name)
    record = _record(runs_dir, name)
    student = Student(record["id"], record["name"]) if record else claim(runs_dir, new_student(), name)
    return token_for(runs_dir, student)
