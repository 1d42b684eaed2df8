"""Streamlit helpers shared by the pages: the only library module that imports streamlit.

Cached loaders (models keyed by run id and weight hash, datasets, PCA fits), the
settings widgets generated from a config dataclass, uploads, and error display.
"""
from __future__ import annotations

import io
import os
import runpy
import secrets
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from . import access
from .catalog import (dataset_label, eta_text, is_demo, order_runs, phase_of,  # noqa: F401
                      run_label, run_labels, run_warnings)  # (the pages use them)
from .data import OFFLINE, TORCHVISION, _torchvision_cached, load_dataset, load_npz
from .errors import AelabError
from .manager import RunManager
from .runref import RunRef
from .runs import atomic_write_bytes, runs_root

UPLOADS = ".datasets"


# --- navigation: app.py runs every page; a page run without it hands over to it ---
_navigation = threading.local()  # per script thread, i.e. per session: never a process global


def run_app(pages: list, **kwargs) -> None:
    """``st.navigation(pages).run()`` with a flag set while the chosen page runs (app.py)."""
    page = st.navigation(pages, **kwargs)
    _navigation.inside = True
    try:
        page.run()
    finally:
        _navigation.inside = False


def within_app() -> None:
    """The first call of every page file: make sure the page runs inside app.py's navigation.

    On a fresh server, Streamlit serves a deep link such as /traversal as the first request
    by running pages/traversal.py alone (its legacy multi-page mode for a pages/ folder: no
    app.py, a short sidebar). Then the flag of ``run_app`` is unset in this thread: run
    app.py here (its navigation picks this same page by its URL) and stop this run.
    """
    if getattr(_navigation, "inside", False):
        return
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or Path(ctx.main_script_path).parent.name == "pages":
        return  # a page run as the main script itself (bare mode, a test): nothing to hand to
    # as the main script, so that app.py's own widgets get the ids of every later run
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
        runpy.run_path(ctx.main_script_path, run_name="__main__")
    st.stop()


# Presenter mode: larger text for a projector, no toolbar (its menu and buttons), the sidebar
# collapsed (still openable at its arrow, where the toggle to leave the mode is).
PRESENTER_CSS = """<style>
html { font-size: 24px; }
[data-testid="stToolbarActions"], [data-testid="stMainMenu"], [data-testid="stAppDeployButton"],
[data-testid="stDecoration"] { display: none; }
[data-testid="stMainBlockContainer"] { padding-top: 2rem; max-width: 100%; }
</style>"""


def presenter_mode() -> bool:
    """The sidebar's "Presenter mode" toggle, also set by a link with ``?present=1`` (kept
    in the URL of every page while on); when on: larger text, no toolbar, sidebar collapsed."""
    _adopt_url("present", "present", lambda raw: raw == "1", lambda value: True)
    on = st.sidebar.toggle("Presenter mode", key="present",
                           help="Larger text, no toolbar, sidebar collapsed; links carry it as ?present=1")
    _write_url("present", "present", "1" if on else None)
    if on:
        st.set_page_config(initial_sidebar_state="collapsed")
        st.html(PRESENTER_CSS)
    return on


# --- a class on one server: who may change which run, per-session limits (aelab.access) ---
def session_owner() -> str:
    """A random id of this browser session; runs it starts are recorded as its own."""
    return st.session_state.setdefault("_aelab_owner", secrets.token_hex(8))


def is_teacher() -> bool:
    """The local user (a browser on this machine, unless ``AELAB_LOCAL_TEACHER=0``), or a
    session that entered the token of ``$AELAB_TEACHER_TOKEN``."""
    if st.session_state.get("_aelab_teacher"):
        return True
    local = st.context.ip_address is None and bool(st.context.headers)  # AppTest: no headers
    return local and access.local_is_teacher()


def teacher_sign_in() -> None:
    """Sidebar: the teacher's token, typed once or brought by ``?token=`` (then removed from
    the URL so a shared link never carries it)."""
    if access.teacher_token() is None:
        return
    entered = st.query_params.get("token")
    if entered is not None:
        st.query_params.pop("token", None)
    entered = entered or st.session_state.get("teacher_token")
    if entered and access.token_matches(entered):
        st.session_state["_aelab_teacher"] = True
    if st.session_state.get("_aelab_teacher"):
        st.sidebar.caption(":material/school: Teacher: you can cancel and delete any run.")
    else:
        st.sidebar.text_input("Teacher token", type="password", key="teacher_token",
                              help="Set by AELAB_TEACHER_TOKEN when the server was started")
        if entered:
            st.sidebar.error("That is not the teacher's token.")


def with_owners(rows: list[dict]) -> list[dict]:
    """The rows with each run's recorded ``owner`` (None for demo runs and CLI runs)."""
    return [{**r, "owner": access.read_owner(runs_dir() / r["id"])} for r in rows]


def may_change(row: dict) -> str | None:
    """Why this session may not cancel, resume or delete the run, or None when it may."""
    return access.may_change(row["id"], row.get("owner"), session_owner(), is_teacher())


def check_allowed(row: dict) -> None:
    """Raise AccessError unless this session may change the run (a second check behind the
    disabled buttons)."""
    refusal = may_change(row)
    if refusal:
        raise access.AccessError(refusal)


def submit_run(variant: str, dataset: str, model: dict, train: dict) -> str:
    """Start a run for this session within its limits; the run id."""
    started = st.session_state.get("_aelab_started", 0)
    access.check_submit(with_owners(manager().list()), session_owner(), started,
                        access.Limits.from_env(), is_teacher())
    run_id = manager().submit(variant, dataset, model, train)
    access.write_owner(runs_dir() / run_id, session_owner())
    st.session_state["_aelab_started"] = started + 1
    return run_id


def start_study(spec) -> int:
    """Start (or pick up) a study for this session; each new trial counts as a run against a
    student's limits. The number of trials."""
    from .study import Study

    spec.validate()  # a wrong setting is the first thing to hear about
    trials = len(spec.trials())
    started = st.session_state.get("_aelab_started", 0)
    limits = access.Limits.from_env()
    if not is_teacher() and (trials > limits.active_runs or started + trials > limits.runs):
        raise access.AccessError(f"A study of {trials} runs is more than a student may start "
                                 f"({limits.active_runs} queued or running, {limits.runs} in all); "
                                 f"ask the teacher to start it.")
    access.check_submit(with_owners(manager().list()), session_owner(), started, limits,
                        is_teacher())
    for run_dir in Study(spec, runs_dir()).start():
        if access.read_owner(run_dir) is None:
            access.write_owner(run_dir, session_owner())
    st.session_state["_aelab_started"] = started + trials
    return trials


def runs_dir() -> Path:
    """The runs folder the app works on (``$AELAB_RUNS`` or ./checkpoints)."""
    return runs_root().resolve()


def manager() -> RunManager:
    """The run manager of the app's runs folder."""
    return RunManager(runs_dir())


def list_runs() -> list[dict]:
    """Every run of the runs folder, demo runs first, then newest first (``order_runs``)."""
    return order_runs(manager().list())


# --- state in the URL: a link reopens the same view ---
def _adopt_url(param: str, key: str, parse, valid) -> None:
    """Put the URL's ``param`` into widget ``key`` when the URL brought a value this
    session has not seen yet (a shared link, a link on the Lesson page); a value the
    widget itself wrote is not adopted again, so the widget keeps what the user picks."""
    raw = st.query_params.get(param)
    seen = f"_url.{key}"
    if raw is None or st.session_state.get(seen) == raw:
        return
    st.session_state[seen] = raw
    try:
        value = parse(raw)
    except ValueError:
        return
    if valid(value):
        st.session_state[key] = value


def _write_url(param: str, key: str, raw: str | None) -> None:
    """Show the widget's value in the URL (``None``: drop the parameter)."""
    st.session_state[f"_url.{key}"] = raw
    if raw is None:
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != raw:
        st.query_params[param] = raw


def url_selectbox(label: str, options: list, key: str, param: str, *, index: int = 0,
                  format_func=str, always: bool = False, **kwargs):
    """``st.selectbox`` whose value lives in the URL query parameter ``param`` (by its
    ``str``); shown in the URL when it is not the default, or always with ``always``."""
    by_text = {str(o): o for o in options}
    _adopt_url(param, key, lambda raw: by_text[raw] if raw in by_text else _bad(raw),
               lambda v: True)
    value = st.selectbox(label, options, index=index, format_func=format_func, key=key, **kwargs)
    default = options[index] if options else None
    _write_url(param, key, None if value is None or (value == default and not always) else str(value))
    return value


def url_multiselect(label: str, options: list[str], key: str, param: str, default: list[str],
                    **kwargs) -> list[str]:
    """``st.multiselect`` of strings whose value is ``param=a,b`` in the URL."""
    _adopt_url(param, key, lambda raw: [o for o in raw.split(",") if o in options],
               lambda v: bool(v))
    value = st.multiselect(label, options, default=default, key=key, **kwargs)
    _write_url(param, key, ",".join(value) if value != default else None)
    return value


def url_number(label: str, low: int, high: int, value: int, key: str, param: str, **kwargs) -> int:
    """``st.number_input`` of an integer kept in the URL when not ``value``."""
    _adopt_url(param, key, int, lambda v: low <= v <= high)
    number = st.number_input(label, low, high, value, key=key, **kwargs)
    _write_url(param, key, None if number == value else str(number))
    return number


def _bad(raw: str):
    raise ValueError(raw)


def run_ref(run: "dict | str | os.PathLike | RunRef") -> RunRef:
    """The handle of a run the page names (a row of ``manager().list()``, a run id from a
    selection or the query string, or a folder), confined to the app's runs folder."""
    if isinstance(run, dict):
        run = run["id"]
    return RunRef.resolve(run, runs_dir())


@st.cache_resource(max_entries=32, show_spinner=False)
def _model(root: str, run_id: str, sha256: str):
    return RunRef(Path(root), run_id).load_model()


def model_for(run) -> object:
    """The run's model in eval mode, cached by run and weights hash."""
    ref = run_ref(run)
    return _model(str(ref.root), ref.run_id, ref.weights_sha256())


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset...")
def dataset(name: str, stamp: float = 0.0):
    """A dataset, loaded once per server (``stamp``: the file's mtime for npz data)."""
    return load_dataset(name)


def dataset_for(name: str):
    """``dataset(name)``, refreshed when an npz file changes on disk."""
    stamp = os.path.getmtime(name[4:]) if name.startswith("npz:") and os.path.exists(name[4:]) else 0.0
    return dataset(name, stamp)


@st.cache_resource(max_entries=32, show_spinner=False)
def pca(name: str, k: int):
    """PCA with ``k`` components fitted on the train split of dataset ``name``."""
    from .evaluate import fit_pca

    return fit_pca(dataset_for(name).x_train, k)


def device_text() -> str:
    """The device training would use here: the GPU's name, or CPU."""
    from .train import device_label, resolve_device

    return device_label(resolve_device("auto"))


def device_choices() -> list[str]:
    """``auto``, ``cpu`` and whichever accelerators this machine has."""
    import torch

    choices = ["auto", "cpu"]
    choices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps and mps.is_available():
        choices.append("mps")
    return choices


def uploads_dir() -> Path:
    return runs_dir() / UPLOADS


def dataset_choices() -> list[str]:
    """Datasets usable right now: shipped, cached downloads and uploaded npz files."""
    names = list(OFFLINE) + [n for n in TORCHVISION if _torchvision_cached(n)]
    if uploads_dir().is_dir():
        names += [f"npz:{p}" for p in sorted(uploads_dir().glob("*.npz"))]
    return names


def store_upload(filename: str, data: bytes) -> str:
    """Validate an uploaded npz in memory, then keep it beside the runs; its dataset name.

    The bytes are checked (``data.load_npz``: members, headers, unpacked size, labels, then
    the images) before anything is written, so nothing invalid is ever stored; a bad file
    raises the one-sentence DatasetError.
    """
    count, total = st.session_state.get("_aelab_uploads", (0, 0))
    access.check_upload(count, total, len(data), access.Limits.from_env(), is_teacher())
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(filename).stem)[:40] or "data"
    load_npz(io.BytesIO(data), name=Path(filename).name or f"{stem}.npz")
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{stem}.npz"
    atomic_write_bytes(final, data)
    st.session_state["_aelab_uploads"] = (count + 1, total + len(data))
    return f"npz:{final}"


def store_upload_once(upload) -> str:
    """``store_upload`` for a file of ``st.file_uploader``, once per file: every rerun of the
    page sees the same file again, and counts against the session's limits only once."""
    stored = st.session_state.setdefault("_aelab_stored", {})
    if upload.file_id not in stored:
        stored[upload.file_id] = store_upload(upload.name, upload.getvalue())
    return stored[upload.file_id]


# Labels a student reads; the field's own name (the CLI's) is given in the help text.
FIELD_LABELS = {
    "latent_dim": "Code size (latent dimensions)", "arch": "Architecture", "hidden": "Hidden layer sizes",
    "likelihood": "Reconstruction likelihood", "epochs": "Epochs", "batch_size": "Batch size",
    "lr": "Learning rate", "seed": "Random seed", "beta": "β (KL weight)",
    "capacity_max": "Target KL capacity C (nats)", "capacity_steps": "Steps for C to rise",
    "gamma": "γ (weight of |KL − C|)", "noise": "Corruption", "noise_level": "Corruption level",
    "rho": "Target activation ρ", "sparsity_weight": "Sparsity weight β", "k": "Units kept (k)",
    "k_start": "Units kept at the start", "k_test_multiplier": "Units kept at test time (× k)",
    "contractive_weight": "Contractive weight λ", "alpha": "α", "disc_hidden": "Discriminator layers",
    "disc_lr": "Discriminator learning rate", "device": "Device",
}


def field_label(name: str) -> str:
    """A readable label for a config field (``capacity_steps`` -> "Steps for C to rise")."""
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def settings_widgets(config_cls, key: str, only: list[str] | None = None,
                     skip: tuple[str, ...] = ()) -> dict:
    """One widget per field of ``config_cls`` (type and default from its metadata), with a
    readable label and help. Numbers are not clamped by the widget: an invalid value (say,
    epochs = 0) reaches the config's validation and is refused with its sentence."""
    values = {}
    for p in config_cls.parameters():
        name = p["name"]
        if name in skip or (only is not None and name not in only):
            continue
        wkey = f"{key}.{name}"
        rule = _range_text(p)
        help_text = f"{p.get('help', '')}{rule} (`{name}` on the command line)"
        label = field_label(name)
        if p.get("choices"):
            options = list(p["choices"])
            values[name] = st.selectbox(label, options, index=options.index(p["default"]),
                                        key=wkey, help=help_text)
        elif p["type"] == "bool":
            values[name] = st.checkbox(label, value=p["default"], key=wkey, help=help_text)
        elif p["type"] in ("int", "float"):
            cast = int if p["type"] == "int" else float
            values[name] = st.number_input(label, value=cast(p["default"]), key=wkey, help=help_text,
                                           step=1 if cast is int else None,
                                           format=None if cast is int else "%g")
        elif p["type"] == "ints":
            values[name] = st.text_input(label, value=",".join(map(str, p["default"])), key=wkey,
                                         help=help_text)
        else:
            values[name] = st.text_input(label, value=str(p["default"]), key=wkey, help=help_text)
    return values


def _range_text(p: dict) -> str:
    low = [f"{'>' if 'gt' in p else '≥'} {p.get('gt', p.get('ge'))}"] if "gt" in p or "ge" in p else []
    high = [f"{'<' if 'lt' in p else '≤'} {p.get('lt', p.get('le'))}"] if "lt" in p or "le" in p else []
    return f"; {' and '.join(low + high)}" if low or high else ""


def show_error(exc: Exception) -> None:
    """A failure as one sentence on the page (never a traceback)."""
    st.error(str(exc) if isinstance(exc, AelabError) else f"{type(exc).__name__}: {exc}")


def finished_runs(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("state") == "done"]


def plot(figure, key: str, name: str | None = None, **kwargs) -> None:
    """``st.plotly_chart`` whose toolbar's camera saves a PNG (``name``.png, twice the size),
    with no Plotly logo: every figure of the app can be downloaded for slides."""
    config = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]
              if kwargs.get("on_select") in (None, "ignore") else [],
              "toImageButtonOptions": {"format": "png", "filename": name or key, "scale": 2}}
    return st.plotly_chart(figure, key=key, config=config, **kwargs)


def labelled_images(rows, scale: int, width: tuple[int, int] = (1, 6)) -> None:
    """One line per ``(label, images)``: the label (markdown) left, the images in a row
    right, so a grid's rows say what they show."""
    from .compare import image_grid

    for label, images in rows:
        left, right = st.columns(list(width), vertical_alignment="center")
        left.markdown(label)
        with right:
            image(image_grid([images], scale=scale))


def image(picture: np.ndarray, caption: str | None = None, width: int | None = None) -> None:
    """Show a uint8 picture crisp: lossless PNG (st.image sends arrays as JPEG by default,
    which smears small digits), at its own size."""
    st.image(picture, caption=caption, width=width or "content", clamp=True, output_format="PNG")



# --- explore pages ---
def _with_status(label: str, work):
    """Run ``work(progress)`` showing a status box whose label follows its progress."""
    with st.status(label, expanded=False) as box:
        result = work(lambda message: box.update(label=f"{label}: {message}"))
        box.update(label=f"{label}: done", state="complete")
    return result


def caches_for(run) -> dict:
    """The run's codes and projections; computed with a progress box when missing or stale."""
    from .caches import _projections_fresh, load_caches

    ref = run_ref(run)
    digest = ref.weights_sha256()
    if _projections_fresh(ref, digest):
        return _cached_arrays(str(ref.root), ref.run_id, digest)
    return _with_status("Computing codes and projections", lambda say: load_caches(ref, say))


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_arrays(root: str, run_id: str, sha256: str) -> dict:
    from .caches import load_caches

    return load_caches(RunRef(Path(root), run_id))


def scores_for(run) -> list[dict] | None:
    """The Latent space score table, or None while a background process computes it (the
    page says so and fills in when it is ready; it never waits for it)."""
    return background_scores(run_ref(run).path, "latent", "the score table", "a minute or two",
                             stop=False)


@st.cache_data(max_entries=64, show_spinner=False)
def _traversals(root: str, run_id: str, sha256: str, factors: tuple, dims: tuple) -> np.ndarray:
    from .lesson_disentangle import traversals

    return traversals(_model(root, run_id, sha256), list(factors), list(dims))


def traversals_for(run, factors: list[int], dims: list[int]) -> np.ndarray:
    """``lesson_disentangle.traversals`` of the run's model, cached by weights and inputs."""
    ref = run_ref(run)
    return _traversals(str(ref.root), ref.run_id, ref.weights_sha256(), tuple(factors), tuple(dims))


def disentanglement_for(run_dir) -> dict:
    """The run's disentanglement scores; if they are not ready, start (or wait for) the
    background scorer (``aelab.scoring``), say so, poll until it finishes and stop the page."""
    return background_scores(run_dir, "disentangle", "this run's disentanglement",
                             "about a minute on 2 CPU cores", stop=True)


def background_scores(run_dir, kind: str, what: str, how_long: str, stop: bool):
    """Fresh scores of ``kind`` (``aelab.scoring.KINDS``), or start (or wait for) their
    background process: a sentence on the page, a poll every 3 s that reruns the page once
    they are ready, then ``st.stop()`` if ``stop`` else None."""
    from .scoring import scoring_state, start_scoring

    state = scoring_state(run_dir, kind)
    if state["state"] == "ready":
        return state["scores"]
    if state["state"] == "failed":
        st.error(f"Scoring {what} failed: {state['error']}")
        if st.button("Score again", key=f"score_again_{kind}"):
            start_scoring(run_dir, kind)
            st.rerun()
    else:
        start_scoring(run_dir, kind)
        st.info(f"Scoring {what} in the background ({how_long}); the page fills in when the "
                "scores are ready and stays usable meanwhile.", icon=":material/hourglass_top:")

        @st.fragment(run_every=3)
        def wait() -> None:
            if scoring_state(run_dir, kind)["state"] in ("ready", "failed"):
                st.rerun()

        wait()
    if stop:
        st.stop()
    return None


def pick_run(rows: list[dict], key: str, variants: tuple[str, ...] | None = None,
             label: str = "Run", param: str = "run") -> dict | None:
    """A selectbox over finished runs (optionally of some variants), demo runs first, kept in
    the URL as ``?run=<id>``; None with a note if there is none."""
    done = order_runs([r for r in finished_runs(rows) if variants is None or r["variant"] in variants])
    if not done:
        kinds = f" of {', '.join(variants)}" if variants else ""
        st.info(f"No finished runs{kinds} yet. Train one, or run `python -m aelab demo-runs`.")
        return None
    labels = run_labels(done)
    chosen = url_selectbox(label, list(labels), key=key, param=param, format_func=labels.get,
                           always=True)
    return next(r for r in done if r["id"] == chosen)


def open_run(run: dict, with_caches: bool = True):
    """(run handle, model, dataset, caches or None) of a picked run; a failure is shown as
    one sentence and stops the page."""
    try:
        ref = run_ref(run)
        return (ref, model_for(ref), dataset_for(ref.config["dataset"]),
                caches_for(ref) if with_caches else None)
    except AelabError as exc:
        show_error(exc)
        st.stop()
