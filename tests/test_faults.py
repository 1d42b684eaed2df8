"""Fault injection: hostile run references, damaged run files, non-finite weights, bad npz
files, a full disk and odd arguments. Each fault must give one sentence (exit status 2 on
the CLI), lose nothing and touch nothing outside the runs folder.

``FAULTS`` counts the kinds tried; ``python -m pytest -q tests/test_faults.py`` prints the
README table's figures at the end (see ``test_zz_summary``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aelab.cli import main
from aelab.errors import RunError
from aelab.runs.folder import write_status
from aelab.runs.local import RunManager
from aelab.runs.refs import RunRef
from aelab.training.setup import prepare_run

SMALLEST = {"latent_dim": 2, "hidden": "8"}  # the smallest model the checks need
FAULTS: dict[str, list] = {}  # kind -> [tried, refused with one sentence, lost nothing]


def record(kind: str, sentence_ok: bool, nothing_lost: bool) -> None:
    row = FAULTS.setdefault(kind, [0, 0, 0])
    row[0] += 1
    row[1] += bool(sentence_ok)
    row[2] += bool(nothing_lost)


def snapshot(folder: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file and folder under ``folder`` (not following links) with a hash of its bytes."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        if skip is not None and Path(root).resolve() == skip.resolve():
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink() or path.is_dir():
                seen[rel] = "link" if path.is_symlink() else "dir"
            else:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def one_sentence(err: str) -> bool:
    err = err.strip()
    return err.startswith("error: ") and "\n" not in err and "Traceback" not in err


# --- 1. run references confined to the runs folder ---
@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (cwd) with sentinels, ./checkpoints holding one run, and outside it
    an interrupted run (as ``train --out`` makes) and a decoy: a run's config.json beside a
    user's file, with no status.json, so not a run."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "notes.txt").write_text("keep me\n")
    runs = project / "checkpoints"
    runs.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("AELAB_RUNS", raising=False)
    inside = prepare_run("ae", "digits", SMALLEST, {"epochs": 1}, runs_dir=runs)
    outside = prepare_run("ae", "digits", SMALLEST, {"epochs": 1}, out=tmp_path / "outside")
    write_status(outside, state="interrupted", error="sentinel")
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    shutil.copy(outside / "config.json", decoy / "config.json")
    (decoy / "keep.txt").write_text("not a run\n")
    (runs / "link").symlink_to(outside, target_is_directory=True)
    (runs / "notarun").mkdir()
    (runs / "notarun" / "keep.txt").write_text("not a run\n")
    return {"root": tmp_path, "project": project, "runs": runs, "inside": inside,
            "outside": outside, "decoy": decoy}


def hostile_refs(p) -> list[str]:
    """References no command may act on: nothing, the folders around, links, the decoy."""
    return ["..", "../decoy", ".", "", str(p["decoy"]), str(p["project"]), "/",
            "checkpoints/../../decoy", "link", str(p["runs"] / "link"), ".git", "~",
            "../project/notes.txt", "nope/../..", "checkpoints", "checkpoints/link/.",
            "checkpoints/link/../outside", "./", "checkpoints/.."]


def outside_refs(p) -> list[str]:
    """Paths to the run outside the runs folder: accepted on the command line, never in
    the app or by a manager given a plain string."""
    return ["../outside", str(p["outside"]), "checkpoints/../../outside"]


RUN_COMMANDS = [["runs", "show"], ["runs", "cancel"], ["runs", "resume"], ["runs", "delete"],
                ["evaluate"], ["disentangle"], ["worker"]]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=" ".join)
def test_run_commands_refuse_every_reference_outside_the_runs_folder(project, command, capsys):
    before = snapshot(project["root"], skip=project["runs"])
    inside_before = snapshot(project["runs"])
    for ref in hostile_refs(project):
        code = main([*command, ref])
        err = capsys.readouterr().err
        ok = code == 2 and one_sentence(err)
        lost = snapshot(project["root"], skip=project["runs"]) != before
        record("hostile run reference", ok, not lost)
        assert ok, (ref, code, err)
        assert not lost, ref
    assert snapshot(project["runs"]) == inside_before  # the link and notarun are untouched


@pytest.mark.slow
def test_runs_delete_dot_in_the_project_folder_deletes_nothing(project):
    """The reported disaster: ``python -m aelab runs delete .`` typed in the project folder."""
    before = snapshot(project["root"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for ref in (".", "..", str(project["decoy"])):
        done = subprocess.run([sys.executable, "-m", "aelab", "runs", "delete", ref],
                              cwd=project["project"], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and one_sentence(done.stderr), done.stderr
    assert snapshot(project["root"]) == before


def test_a_run_outside_named_by_its_path_is_the_only_thing_deleted(project, capsys):
    """A run made elsewhere (``train --out``) is accepted by its path; deleting it removes its
    run files and folder and touches nothing else (the link to it in the runs folder stays)."""
    outside = project["outside"]
    before = snapshot(project["root"], skip=outside)
    assert main(["runs", "show", "../outside"]) == 0 and "sentinel" in capsys.readouterr().out
    assert main(["runs", "delete", "checkpoints/../../outside"]) == 0
    assert not outside.exists()
    after = snapshot(project["root"])
    assert after == {k: v for k, v in before.items() if k != "outside"}


def test_delete_needs_a_config_and_works_on_a_real_run(project, capsys):
    assert main(["runs", "delete", "notarun"]) == 2
    assert "holds no config.json, so it is not a run" in capsys.readouterr().err
    assert (project["runs"] / "notarun" / "keep.txt").exists()
    assert main(["runs", "show", project["inside"].name]) == 0
    assert main(["runs", "delete", str(project["inside"])]) == 0  # a path inside is accepted
    assert not project["inside"].exists() and project["outside"].is_dir()


def test_manager_and_app_refuse_references_outside(project, monkeypatch):
    manager = RunManager(project["runs"], start_supervisor=False)
    before = snapshot(project["root"], skip=project["runs"])
    calls = [manager.show, manager.status, manager.cancel, manager.resume, manager.delete,
             lambda r: manager.wait(r, timeout=0)]
    for ref in hostile_refs(project) + outside_refs(project):
        for call in calls:
            with pytest.raises(RunError) as info:
                call(ref)
            record("hostile reference via the manager", "\n" not in str(info.value),
                   snapshot(project["root"], skip=project["runs"]) == before)
    rows = {row["id"]: row for row in manager.list()}
    assert rows["link"]["state"] == "damaged" and "outside the runs folder" in rows["link"]["damaged"]
    monkeypatch.setenv("AELAB_RUNS", str(project["runs"]))
    from aelab import ui

    for ref in hostile_refs(project) + outside_refs(project):
        for given in (ref, {"id": ref}):  # a query string / selection, or a listed row
            with pytest.raises(RunError) as info:
                ui.run_ref(given)
            record("hostile reference in the app", "\n" not in str(info.value), True)
    assert ui.run_ref({"id": project["inside"].name}).path == project["inside"]


def test_refusals_are_one_plain_sentence(project):
    runs = project["runs"]
    with pytest.raises(RunError, match=r"^'\.\.' is not a run id"):
        RunRef.checked("..", runs)
    with pytest.raises(RunError, match=r"is a symbolic link to .* outside the runs folder"):
        RunRef.checked("link", runs)
    with pytest.raises(RunError, match=r"is not a run of the runs folder"):
        RunRef.checked(str(project["outside"]), runs)
    with pytest.raises(RunError, match=r"run ids never start with a dot"):
        RunRef.checked(".git", runs)
    ref = RunRef.checked(project["inside"].name, runs)
    assert ref.path == project["inside"] and ref.config["variant"] == "ae"
    assert os.fspath(ref) == str(project["inside"]) and (ref / "config.json").is_file()


# --- 2. damaged or partial run files ---
import json  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import aelab.metrics.results  # noqa: E402
from aelab.errors import AelabError  # noqa: E402
from aelab.metrics.results import CACHE, EVAL, get_caches, get_eval, rebuild_eval, rebuild_projections  # noqa: E402
from aelab.runs.folder import STATES, WEIGHTS, read_metrics  # noqa: E402
from aelab.runs.train import train_run  # noqa: E402


def _pca_only(monkeypatch_or_mp):
    """Projections by PCA only: UMAP's seconds of JIT compilation are not what is tested."""
    project = aelab.metrics.results.project_2d
    monkeypatch_or_mp.setattr(aelab.metrics.results, "project_2d",
                              lambda x, method, seed=0: project(x, "pca", seed))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One finished tiny run with its eval.json and cache.safetensors, made once."""
    root = tmp_path_factory.mktemp("good")
    run = prepare_run("ae", "digits", SMALLEST, {"epochs": 1, "device": "cpu", "caches": False},
                      runs_dir=root)
    assert train_run(run)["state"] == "done"
    with pytest.MonkeyPatch.context() as mp:
        _pca_only(mp)
        rebuild_eval(run)
        rebuild_projections(run)
    return run


def _wrong(value):
    """A value of another JSON type than ``value``."""
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, (int, float)):
        return "x"
    if isinstance(value, str):
        return 5
    if isinstance(value, dict):
        return []
    return "x"


def _json_mutations(data: bytes) -> dict[str, bytes]:
    obj = json.loads(data)
    out = {"a list": b"[]", "a string": b'"x"', "null": b"null"}
    for key, value in obj.items():
        out[f"{key} of the wrong type"] = json.dumps({**obj, key: _wrong(value)}).encode()
    return out


def _tensor_mutations(data: bytes, name: str) -> dict[str, bytes]:
    from safetensors.torch import load, save

    tensors = load(data)
    first = sorted(tensors)[0]
    renamed = {("renamed" if k == first else k): v for k, v in tensors.items()}
    out = {"a tensor renamed": save(renamed),
           "a tensor of another shape": save({**tensors, first: torch.zeros(3)}),
           "one tensor only": save({first: tensors[first]})}
    if name == WEIGHTS:
        nan = {k: v.clone() for k, v in tensors.items()}
        floating = next(k for k, v in nan.items() if v.is_floating_point())
        nan[floating].view(-1)[0] = float("nan")
        inf = {k: v.clone() for k, v in tensors.items()}
        inf[floating].view(-1)[0] = float("inf")
        out["NaN weights"] = save(nan)
        out["infinite weights"] = save(inf)
    return out


def _mutations(name: str, data: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(len(data))
    out = {"empty": b"", "truncated": data[: len(data) // 2],
           "garbage": rng.integers(0, 256, 300, dtype=np.uint8).tobytes(),
           "a folder": None}
    if name.endswith(".json"):
        out.update(_json_mutations(data))
    elif name.endswith(".jsonl"):
        first = data.splitlines()[0]
        for label, line in (("a number line", b"5"), ("a string line", b'"x"'),
                            ("a list line", b"[1]"), ("a text value", b'{"step": "x", "loss": 1}'),
                            ("half a line", first[: len(first) // 2])):
            out[label] = line + b"\n" + data
    else:
        out.update(_tensor_mutations(data, name))
    return out


RUN_FILES = ("config.json", "status.json", "metrics.jsonl", EVAL, CACHE, WEIGHTS)


def damage(run: Path, name: str, kind: str) -> None:
    path = run / name
    data = _mutations(name, path.read_bytes())[kind]
    path.unlink()
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)


def _readers(name: str):
    """What reads ``name``: the library calls whose failure must be one sentence."""
    common = [lambda ref: RunManager(ref.root, start_supervisor=False).show(ref.run_id)]
    return common + {
        "config.json": [lambda ref: ref.load_model()],
        "status.json": [],
        "metrics.jsonl": [lambda ref: read_metrics(ref)],
        EVAL: [lambda ref: get_eval(ref)],
        CACHE: [lambda ref: get_caches(ref)],
        WEIGHTS: [lambda ref: ref.load_model(), lambda ref: get_eval(ref)],
    }[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN_FILES)
def test_each_damaged_run_file_reads_as_damaged_or_one_sentence(good_run, tmp_path, monkeypatch,
                                                                  capsys, name):
    _pca_only(monkeypatch)
    kinds = _mutations(name, (good_run / name).read_bytes())
    for kind in kinds:
        root = tmp_path / kind.replace(" ", "-")
        shutil.copytree(good_run, root / "victim")
        shutil.copytree(good_run, root / "healthy")
        damage(root / "victim", name, kind)
        rows = {row["id"]: row for row in RunManager(root, start_supervisor=False).list()}
        assert rows["healthy"]["state"] == "done"
        victim = rows["victim"]
        ok = victim["state"] in STATES or (victim["state"] == "damaged" and victim["damaged"])
        ref = RunRef.checked("victim", root)
        for read in _readers(name):
            try:
                read(ref)
            except AelabError as exc:
                ok = ok and "\n" not in str(exc) and str(exc).strip() != ""
        assert main(["runs", "list", "--runs-dir", str(root)]) == 0
        code = main(["runs", "show", "victim", "--runs-dir", str(root)])
        err = capsys.readouterr().err
        ok = ok and (code == 0 or (code == 2 and one_sentence(err)))
        healthy_intact = snapshot(root / "healthy") == snapshot(good_run)
        record(f"damaged {name}", ok, healthy_intact)
        assert ok, (name, kind, victim, code, err)
        assert healthy_intact, kind


def test_a_damaged_heartbeat_no_longer_breaks_the_list(good_run, tmp_path, capsys):
    """The reported crash: a heartbeat that is not a number."""
    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "victim")
    status = json.loads((root / "victim" / "status.json").read_text())
    (root / "victim" / "status.json").write_text(json.dumps({**status, "state": "running",
                                                              "heartbeat": "soon"}))
    (row,) = RunManager(root, start_supervisor=False).list()
    assert row["state"] == "damaged" and "heartbeat is 'soon', not a number" in row["damaged"]
    assert main(["runs", "list", "--runs-dir", str(root)]) == 0
    assert "damaged: status of run victim is damaged" in capsys.readouterr().out


def test_non_finite_weights_are_one_sentence_naming_the_run(good_run, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "diverged")
    damage(root / "diverged", WEIGHTS, "NaN weights")
    assert main(["evaluate", "diverged", "--runs-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and "of run diverged holds NaN or infinite values" in err
    ref = RunRef.checked("diverged", root)
    with pytest.raises(RunError, match=r"model.safetensors of run diverged holds NaN or infinite "
                                       r"values .*the training diverged"):
        ref.load_model()
    record("non-finite weights", True, True)


@pytest.mark.slow
def test_every_page_keeps_working_beside_damaged_runs(good_run, tmp_path, monkeypatch):
    """A runs folder with one damaged run per file and a healthy one: every page renders
    without an exception (the damaged runs show as damaged or as one sentence)."""
    from streamlit.testing.v1 import AppTest

    import aelab.runs.local

    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "a-healthy")
    for name, kind in (("status.json", "heartbeat of the wrong type"), ("config.json", "model of the wrong type"),
                       ("metrics.jsonl", "garbage"), (EVAL, "recon_mse of the wrong type"),
                       (CACHE, "truncated"), (WEIGHTS, "NaN weights")):
        folder = root / f"b-{name.split('.')[0]}-{kind.split()[0].lower()}"
        shutil.copytree(good_run, folder)
        damage(folder, name, kind)
    monkeypatch.setenv("AELAB_RUNS", str(root))
    monkeypatch.setattr(aelab.runs.local, "ensure_supervisor", lambda *a, **k: None)
    _pca_only(monkeypatch)
    app = Path(__file__).resolve().parents[1] / "app.py"
    pages = sorted(p.relative_to(app.parent).as_posix() for p in (app.parent / "pages").glob("*.py"))
    for page in pages:
        at = AppTest.from_file(str(app), default_timeout=120)
        at.switch_page(page)
        at.run()
        ok = not at.exception
        record("page beside damaged runs", ok, snapshot(root / "a-healthy") == snapshot(good_run))
        assert ok, (page, [e.value for e in at.exception])


# --- 4. npz files checked from their headers before any array is read ---
import io  # noqa: E402
import re  # noqa: E402
import tracemalloc  # noqa: E402
import zipfile  # noqa: E402

import aelab.data.datasets  # noqa: E402
from aelab.data.datasets import load_npz  # noqa: E402
from aelab.errors import DatasetError  # noqa: E402


def npy_bytes(array: np.ndarray | None = None, header_shape=None, dtype="<f4", data=b"") -> bytes:
    """An .npy member; with ``header_shape`` a header that claims that shape over ``data``."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array)
    else:
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": dtype, "fortran_order": False, "shape": header_shape})
        buffer.write(data)
    return buffer.getvalue()


def zip_of(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


X = (np.random.default_rng(0).random((20, 8, 8)) * 255).astype(np.uint8)
LIMIT = 16 << 20  # the tests' MAX_NPZ_BYTES


def zip_bomb(path: Path, mib: int) -> Path:
    """An npz of ``mib`` MiB of zeros, a few hundred KB compressed, written in chunks."""
    header = npy_bytes(header_shape=(mib, 1024, 1024), dtype="|u1")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as member:
            member.write(header)
            for _ in range(mib):
                member.write(bytes(1 << 20))
    return path


def bad_npz_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the sentence expected) for every kind of bad npz tried."""
    f = {}
    f["a member that is not .npy"] = (zip_of(folder / "a.npz", {"x.npy": npy_bytes(X),
                                                                "notes.txt": b"hello"}),
                                      "holds 'notes.txt', which is not a .npy array")
    f["a header claiming 2.9 TiB"] = (zip_of(folder / "b.npz", {"x.npy": npy_bytes(
        header_shape=(800_000, 1000, 1000), data=b"\0" * 64)}),
        "the header of x declares 2980.23 GiB")
    f["a header claiming more than the member holds"] = (zip_of(folder / "c.npz", {"x.npy": npy_bytes(
        header_shape=(1000, 8, 8), data=b"\0" * 64)}), "is damaged: the header of x declares")
    f["labels of 1e9"] = (zip_of(folder / "d.npz", {"x.npy": npy_bytes(X), "y.npy": npy_bytes(
        np.array([10**9] + [0] * 19))}), "has a class label of 1e+09; labels must lie in 0 to 999")
    f["object arrays"] = (zip_of(folder / "e.npz", {"x.npy": npy_bytes(
        header_shape=(3,), dtype="|O", data=b"\0" * 64)}), "holds Python objects")
    f["complex numbers"] = (zip_of(folder / "f.npz", {"x.npy": npy_bytes(X.astype(np.complex64))}),
                            "must be uint8 (0-255) or float (0-1) numbers")
    f["a version-9 npy header"] = (zip_of(folder / "g.npz", {"x.npy": b"\x93NUMPY\x09\x00junk"}),
                                   "is not a readable .npz file")
    f["a zip bomb"] = (zip_bomb(folder / "h.npz", 64), "unpacks to 64.0 MiB, more than the limit of "
                                                      "16.0 MiB (AELAB_MAX_NPZ_BYTES)")
    f["labels of another length"] = (zip_of(folder / "i.npz", {"x.npy": npy_bytes(X), "y.npy": npy_bytes(
        np.zeros(7, np.int64))}), "y has 7 labels but there are 20 images")
    f["a directory entry"] = (zip_of(folder / "j.npz", {"x.npy": npy_bytes(X), "sub/": b""}),
                              "holds 'sub/', which is not a .npy array")
    (folder / "k.npz").mkdir()
    f["a folder named .npz"] = (folder / "k.npz", "is a folder, not an npz file")
    return f


@pytest.fixture(scope="module")
def bad_npz(tmp_path_factory):
    return bad_npz_files(tmp_path_factory.mktemp("npz"))


def test_bad_npz_files_are_refused_from_their_headers_with_little_memory(bad_npz, monkeypatch,
                                                                         tmp_path):
    monkeypatch.setattr(aelab.data.datasets, "MAX_NPZ_BYTES", LIMIT)
    runs = tmp_path / "runs"
    runs.mkdir()
    for kind, (path, message) in bad_npz.items():
        tracemalloc.start()
        try:
            with pytest.raises(DatasetError) as info:
                load_npz(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # nothing is written before the data is valid: a refused npz leaves no run folder
        assert main(["train", "--variant", "ae", "--dataset", f"npz:{path}", "--runs-dir", str(runs)]) == 2
        ok = message in str(info.value) and "\n" not in str(info.value)
        record("bad npz file", ok, list(runs.iterdir()) == [] and peak < 8 << 20)
        assert ok, (kind, str(info.value))
        assert peak < 8 << 20, (kind, peak)  # refused from headers: no array was allocated
    assert list(runs.iterdir()) == []


def test_uploads_get_the_same_checks_and_nothing_is_written(bad_npz, monkeypatch, tmp_path):
    monkeypatch.setattr(aelab.data.datasets, "MAX_NPZ_BYTES", LIMIT)
    monkeypatch.setenv("AELAB_RUNS", str(tmp_path / "runs"))
    from aelab import ui

    for kind, (path, message) in bad_npz.items():
        if path.is_dir():
            continue
        with pytest.raises(DatasetError, match=re.escape(message)):
            ui.store_upload(path.name, path.read_bytes())
        record("bad npz upload", True, not ui.uploads_dir().exists() or not any(ui.uploads_dir().iterdir()))
    assert not ui.uploads_dir().exists() or not any(ui.uploads_dir().iterdir())
    good = zip_of(tmp_path / "good.npz", {"x.npy": npy_bytes(X)})
    assert ui.store_upload("good.npz", good.read_bytes()).endswith("good.npz")


def test_huge_images_are_refused_before_a_run_folder_is_written(tmp_path, capsys):
    path = zip_of(tmp_path / "big.npz", {"x.npy": npy_bytes(np.zeros((2, 2048, 2048), np.uint8))})
    runs = tmp_path / "runs"
    assert main(["train", "--variant", "ae", "--dataset", f"npz:{path}", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and "parameters, more than the limit of 200,000,000" in err
    assert not runs.exists() or list(runs.iterdir()) == []
    record("huge images", True, True)


# --- 5. a full disk ---
import errno  # noqa: E402

import aelab.runs.folder  # noqa: E402
from aelab.runs.folder import read_config, read_status  # noqa: E402


def fill_disk_when(monkeypatch, predicate):
    """Writes of run files whose final name satisfies ``predicate`` write half their bytes,
    then fail as a full disk does."""
    write = aelab.runs.folder._write_all

    def full(f, data, path):
        if predicate(Path(path).name):
            f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(f, data, path)

    monkeypatch.setattr(aelab.runs.folder, "_write_all", full)


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.tmp")]


def test_a_full_disk_fails_the_run_with_a_sentence_and_leaves_it_readable(runs_dir, monkeypatch,
                                                                          capsys):
    fill_disk_when(monkeypatch, lambda name: name in (WEIGHTS, "train_state.safetensors"))
    code = main(["train", "--variant", "ae", "--dataset", "digits", "--epochs", "1",
                 "--latent-dim", "2", "--hidden", "8", "--runs-dir", str(runs_dir)])
    out, err = capsys.readouterr()
    (run,) = runs_dir.iterdir()
    status = read_status(run)
    assert code == 1 and "run failed: no space left on device while writing run" in err
    assert status["state"] == "failed" and "no space left on device" in status["error"]
    assert temp_files(runs_dir) == [] and read_config(run)["variant"] == "ae"
    (row,) = RunManager(runs_dir, start_supervisor=False).list()
    assert row["state"] == "failed"
    record("full disk while training", True, True)


def test_a_full_disk_at_submit_leaves_no_half_made_run(runs_dir, monkeypatch, capsys):
    fill_disk_when(monkeypatch, lambda name: True)
    assert main(["train", "--variant", "ae", "--dataset", "digits", "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and "(no space left on device)" in err
    assert list(runs_dir.iterdir()) == []
    record("full disk at submit", True, True)


def test_a_full_disk_while_caching_is_a_sentence(good_run, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(good_run, root / "r")
    (root / "r" / EVAL).unlink()
    fill_disk_when(monkeypatch, lambda name: True)
    with pytest.raises(RunError, match=r"cannot write eval.json in run r \(no space left on device\)"):
        get_eval(RunRef.checked("r", root))
    assert temp_files(root) == []
    record("full disk while caching", True, True)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 512 KiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_tmpfs(tiny_tmpfs, capsys):
    runs = tiny_tmpfs / "runs"
    code = main(["train", "--variant", "ae", "--dataset", "digits", "--epochs", "1",
                 "--hidden", "1024", "--runs-dir", str(runs)])  # ~0.5 MB of weights: cannot fit
    err = capsys.readouterr().err
    (run,) = runs.iterdir()
    assert code == 1 and "no space left on device" in err and temp_files(runs) == []
    assert read_status(run)["state"] == "failed" and read_config(run)["variant"] == "ae"
    record("full tmpfs while training", True, True)


# --- 6. odd arguments ---
ODD = [
    (["train", "--variant", "ae", "--dataset", "digits", "--out", "/proc/x"],
     "cannot create the run folder /proc/x"),
    (["train", "--variant", "ae", "--dataset", "digits", "--hidden", ""], "--hidden needs comma-separated"),
    (["train", "--variant", "ae", "--dataset", "digits", "--hidden", "400,,200"],
     "hidden must be comma-separated integers such as 512,256, got '400,,200'"),
    (["train", "--variant", "ae", "--dataset", "digits", "--out", "/dev/null"],
     "/dev/null already exists and is not a folder"),
]


@pytest.mark.parametrize("argv,message", ODD)
def test_odd_arguments_are_one_sentence(argv, message, runs_dir, capsys):
    before = snapshot(runs_dir)
    assert main([*argv, "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    ok = one_sentence(err) and message in err
    record("odd argument", ok, snapshot(runs_dir) == before)
    assert ok, err


def test_a_folder_named_npz_is_a_folder(tmp_path, runs_dir, capsys):
    (tmp_path / "x.npz").mkdir()
    assert main(["train", "--variant", "ae", "--dataset", f"npz:{tmp_path / 'x.npz'}",
                 "--runs-dir", str(runs_dir)]) == 2
    assert f"'{tmp_path / 'x.npz'}' is a folder, not an npz file" in capsys.readouterr().err
    record("odd argument", True, True)


# --- the figures for README ---
def test_zz_summary(capsys):
    """Prints the README table's figures (run the whole module: ``pytest -q tests/test_faults.py``)."""
    if not FAULTS:
        pytest.skip("run with the rest of the module")
    tried = sum(row[0] for row in FAULTS.values())
    refused = sum(row[1] for row in FAULTS.values())
    kept = sum(row[2] for row in FAULTS.values())
    with capsys.disabled():
        print(f"\nfault kinds: {len(FAULTS)}; cases tried: {tried}; one sentence: {refused}; "
              f"nothing lost: {kept}")
        for kind, (n, ok, safe) in FAULTS.items():
            print(f"  {kind:<34} {n:>4} {ok:>4} {safe:>4}")
    assert refused == kept == tried
