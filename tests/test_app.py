"""The Streamlit app, page by page, with ``streamlit.testing.v1.AppTest``.

A module fixture trains three tiny ``digits`` runs in this process (``ae`` z=2, ``vae``
z=4, ``denoising`` z=4), adds a damaged folder (unreadable ``status.json``) and a
queued run that nothing starts, and points ``$AELAB_RUNS`` at that folder. Tests that
change the folder (start, cancel, delete, upload) work on a copy of it. No test starts a
background process: ``ensure_supervisor`` is replaced by a recorder for every test.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import conftest
import numpy as np
import pandas as pd
import pytest
from conftest import APP, tiny_run, umap_as_pca
from PIL import Image
from streamlit.testing.v1 import AppTest

import aelab.explore.latent
import aelab.explore.reconstructions
import aelab.metrics.results
import aelab.runs.local
from aelab import ui
from aelab.data.datasets import load_dataset
from aelab.errors import DatasetError
from aelab.explore.reconstructions import image_grid, pick_examples
from aelab.metrics.results import get_eval
from aelab.models import get_variant, list_variants
from aelab.runs.folder import read_config, read_metrics, read_status
from aelab.runs.local import RunManager

RUNS = (("ae", 2), ("denoising", 4), ("vae", 4))  # made in this order, so ids sort so too
DAMAGED = "zz-damaged"


# --- fixtures ---
@dataclass
class Runs:
    root: Path
    ids: dict  # variant (or "queued") -> run id

    def label(self, key: str) -> str:
        """The label the pages give the run (variant, latent size, dataset, id tail)."""
        return ui.run_label(RunManager(self.root, start_supervisor=False).describe(self.root / self.ids[key]))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The fixture runs folder, made once per module, set as ``$AELAB_RUNS``."""
    root = tmp_path_factory.mktemp("app-runs")
    saved = os.environ.get("AELAB_RUNS")
    os.environ["AELAB_RUNS"] = str(root)
    ids = {variant: tiny_run(root, variant, model={"latent_dim": latent}).name for variant, latent in RUNS}
    with umap_as_pca():  # the evaluate metrics the Runs page reads
        for variant, _ in RUNS:
            get_eval(root / ids[variant])
    damaged = root / DAMAGED
    damaged.mkdir()
    shutil.copy(root / ids["ae"] / "config.json", damaged / "config.json")
    (damaged / "status.json").write_text('{"state": ')
    ids["queued"] = RunManager(root, start_supervisor=False).submit(
        "ae", "digits", {"latent_dim": 3, "hidden": "32"}, {"epochs": 1})
    yield Runs(root, ids)
    if saved is None:
        os.environ.pop("AELAB_RUNS", None)
    else:
        os.environ["AELAB_RUNS"] = saved


@pytest.fixture
def runs(template, monkeypatch):
    """The shared fixture runs (read only)."""
    monkeypatch.setenv("AELAB_RUNS", str(template.root))
    return template


@pytest.fixture
def runs_copy(template, tmp_path, monkeypatch):
    """A private copy of the fixture runs, for tests that change the folder."""
    root = tmp_path / "runs"
    shutil.copytree(template.root, root)
    monkeypatch.setenv("AELAB_RUNS", str(root))
    return Runs(root, dict(template.ids))


TOKEN = "class-token-1234"


@pytest.fixture
def teacher(monkeypatch):
    """The server started with a teacher token; pages opened with ``?token=`` act as teacher."""
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", TOKEN)
    return {"token": TOKEN}


@pytest.fixture(autouse=True)
def _no_supervisor(supervisor_calls):
    """No test here starts a background process."""


# --- helpers ---
def open_page(page: str | None = None, **query) -> AppTest:
    """The shared page helper, error boxes allowed: several tests here check them."""
    return conftest.open_page(page, errors=True, **query)


def assert_ok(at: AppTest) -> None:
    """No exception; error boxes are what several tests here check."""
    conftest.assert_ok(at, errors=True)




def folders(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def picture(element, media) -> np.ndarray:
    """The pixels of a shown st.image (its one picture)."""
    (url,) = element.value
    data, mimetype = media[url.rsplit("/", 1)[1].split(".")[0]]
    assert mimetype == "image/png", f"pictures must be sent losslessly, got {mimetype}"
    return np.asarray(Image.open(io.BytesIO(data)))


def image_rows(at: AppTest) -> list[tuple[str, float | None, object]]:
    """The Reconstructions page's rows: (label, MSE shown or None, image element)."""
    labels = [m.value for m in at.markdown if m.value.startswith("**")]
    assert len(labels) == len(at.image), (labels, len(at.image))
    rows = []
    for text, image in zip(labels, at.image):
        label, _, rest = text[2:].partition("**")
        mse = float(rest.split("MSE")[1]) if "MSE" in rest else None
        rows.append((label, mse, image))
    return rows


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


GOOD_NPZ = dict(x=np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8),
                y=np.arange(40) % 4)


# --- app.py and Home ---
def test_home_shows_device_datasets_and_runs(runs):
    import torch

    at = open_page()
    assert texts(at.title) == ["aelab - an autoencoder lab"]
    device = "CPU" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)
    assert f"Training uses **{device}**." in texts(at.markdown)

    datasets, table = at.dataframe[1].value, at.dataframe[2].value  # [0]: the variants
    offline = dict(zip(datasets["dataset"], datasets["offline"]))
    assert offline["digits"] == "yes" and offline["mnist5k"] == "yes"
    assert set(offline) >= {"digits", "mnist5k", "mnist", "fashion-mnist"}
    digits = load_dataset("digits")
    row = datasets.set_index("dataset").loc["digits"]
    assert (row["train"], row["test"], row["shape"]) == (len(digits.x_train), len(digits.x_test), "1x8x8")

    states = dict(zip(table["run"], table["state"]))
    assert states == {runs.label("ae"): "done", runs.label("vae"): "done",
                      runs.label("denoising"): "done", runs.label("queued"): "queued",
                      f"{DAMAGED} (damaged)": "damaged"}
    note = table.set_index("run").loc[f"{DAMAGED} (damaged)", "note"]
    assert note.startswith(f"status of run {DAMAGED} is damaged")
    assert list(table.set_index("run").loc[[runs.label("ae")], "progress"]) == [1.0]


PAGES = re.findall(r'st\.Page\("([^"]+)"', APP.read_text())


def test_app_registers_the_pages():
    assert PAGES[:5] == ["pages/home.py", "pages/lesson.py", "pages/train.py", "pages/runs.py",
                         "pages/reconstructions.py"]
    assert all((APP.parent / page).is_file() for page in PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_no_runs(tmp_path, monkeypatch, page):
    monkeypatch.setenv("AELAB_RUNS", str(tmp_path))
    at = open_page(page)
    assert len(at.title) == 1
    expected = {"pages/home.py": "No runs yet", "pages/runs.py": "No runs yet",
                "pages/reconstructions.py": "No finished runs yet"}
    if page in expected:
        assert any(expected[page] in info for info in texts(at.info)), texts(at.info)
    if page == "pages/train.py":
        assert texts(at.info) == [] and not at.button(key="start").disabled


# --- Train ---
@pytest.mark.parametrize("variant", list_variants())
def test_train_shows_each_variants_own_settings_and_loss(runs, variant):
    at = open_page("pages/train.py")
    at.selectbox(key="variant").select(variant).run()
    assert_ok(at)
    model_class = get_variant(variant)
    own = {p["name"]: ",".join(map(str, p["default"])) if p["type"] == "ints" else p["default"]
           for p in model_class.Config.own_parameters()}  # a list of sizes is typed as text
    shown = {w.key: w.value for kind in ("selectbox", "number_input", "text_input", "checkbox")
             for w in at.get(kind) if w.key and w.key.startswith("own.")}
    assert shown == {f"own.{variant}.{name}": default for name, default in own.items()}
    assert texts(at.latex) == [f"$$\n{model_class.loss_latex}\n$$"]
    assert model_class.about in texts(at.markdown)
    assert {"common.latent_dim", "common.arch", "common.hidden", "common.likelihood",
            "train.epochs", "train.batch_size", "train.lr", "train.seed",
            "train.device"} <= {w.key for kind in ("selectbox", "number_input", "text_input")
                                for w in at.get(kind)}
    # readable labels; the field's own name is in the help text
    epochs = at.number_input(key="train.epochs")
    assert at.number_input(key="common.latent_dim").label == "Code size (latent dimensions)"
    assert "`epochs` on the command line" in epochs.help and "≥ 0" in epochs.help  # 0: the default budget
    assert not any("_" in w.label for kind in ("selectbox", "number_input", "text_input", "checkbox")
                   for w in at.get(kind) if w.key and w.key.startswith(("own.", "common.", "train.")))


@pytest.mark.parametrize("variant, settings, message", [
    ("ksparse", {"common.latent_dim": 2, "own.ksparse.k": 5}, "k (5) must not exceed latent_dim (2)"),
    ("sparse", {"own.sparse.rho": 0.0}, "rho must be in (0.0, 1.0), got 0.0"),
    ("ae", {"common.hidden": "32,x"}, "hidden must be comma-separated integers such as 512,256, got '32,x'"),
    ("ae", {"train.epochs": -1}, "epochs must be in [0, 100000], got -1"),  # refused
    ("vae", {"train.lr": -1.0}, "lr must be"),
    ("adagvae", {"dataset": "digits"}, "adagvae trains on pairs of images that differ in known "
                                       "generative factors, and digits has none"),
    ("semivae", {"dataset": "shapes32", "own.semivae.labels": 200_000},
     "labels (200000) must not exceed the 120000 training images"),
])
def test_train_invalid_settings_show_the_error_and_submit_nothing(runs, supervisor_calls, variant,
                                                                  settings, message):
    before = folders(runs.root)
    at = open_page("pages/train.py")
    at.selectbox(key="variant").select(variant).run()
    for key, value in settings.items():
        at.get_by_key(key).set_value(value)
    at.button(key="start").click().run()
    assert_ok(at)
    errors = texts(at.error)
    assert len(errors) == 1 and message in errors[0], errors
    assert texts(at.success) == []
    assert folders(runs.root) == before
    assert supervisor_calls == []


def test_train_start_queues_exactly_one_run(runs_copy, supervisor_calls):
    before = folders(runs_copy.root)
    at = open_page("pages/train.py")
    at.selectbox(key="variant").select("denoising").run()
    at.number_input(key="common.latent_dim").set_value(3)
    at.selectbox(key="own.denoising.noise").select("masking")
    at.number_input(key="train.epochs").set_value(1)
    at.button(key="start").click().run()
    assert_ok(at)
    assert texts(at.error) == []
    new = folders(runs_copy.root) - before
    assert len(new) == 1 and folders(runs_copy.root) == before | new
    (run_id,) = new
    assert texts(at.success) == [f"Started run {run_id} in the background; this page stays usable."]
    assert read_status(runs_copy.root / run_id)["state"] == "queued"
    config = read_config(runs_copy.root / run_id)
    assert (config["variant"], config["dataset"]) == ("denoising", "digits")
    model, train = config["model"], config["train"]
    assert (model["latent_dim"], model["noise"], train["epochs"]) == (3, "masking", 1)
    assert supervisor_calls == [runs_copy.root.resolve()]


def test_store_upload_keeps_a_good_npz_and_refuses_bad_files(runs_copy):
    name = ui.store_upload("my data.npz", npz_bytes(**GOOD_NPZ))
    assert name == f"npz:{ui.uploads_dir() / 'my-data.npz'}"
    assert ui.dataset_label(name) == "my-data (uploaded)"
    assert len(load_dataset(name).x_train) + len(load_dataset(name).x_test) == 40
    assert name in ui.dataset_choices()

    bad = {"not-a-zip.npz": (b"hello", "not-a-zip.npz is not a readable .npz file (not a zip archive)"),
           "wrong-keys.npz": (npz_bytes(a=np.zeros(3)), "wrong-keys.npz must hold x_train and x_test"),
           "objects.npz": (npz_bytes(x=np.array([{"a": 1}] * 4, dtype=object)),
                           "objects.npz holds Python objects"),
           "floats.npz": (npz_bytes(x=np.full((5, 8, 8), 2.0)), "x values must lie in [0, 1]")}
    for filename, (data, message) in bad.items():
        with pytest.raises(DatasetError) as error:
            ui.store_upload(filename, data)
        assert str(error.value).startswith(message), str(error.value)
    assert sorted(p.name for p in ui.uploads_dir().iterdir()) == ["my-data.npz"]


def test_a_stored_upload_is_offered_on_train_and_home(runs_copy):
    at = open_page("pages/train.py")
    shipped = at.selectbox(key="dataset").options
    assert shipped[:2] == ["digits", "mnist5k"] and "mine (uploaded)" not in shipped
    name = ui.store_upload("mine.npz", npz_bytes(**GOOD_NPZ))
    at = open_page("pages/train.py")
    assert at.selectbox(key="dataset").options == shipped + ["mine (uploaded)"]
    at.selectbox(key="dataset").select(name).run()
    assert at.selectbox(key="dataset").value == name
    at.switch_page("pages/home.py").run()
    assert "mine (uploaded)" in list(at.dataframe[1].value["dataset"])


def test_train_upload_widget_stores_good_and_reports_bad_files(runs_copy):
    at = open_page("pages/train.py")
    at.file_uploader(key="upload").set_value(("bad.npz", b"PK junk", "application/octet-stream")).run()
    assert_ok(at)
    assert len(at.error) == 1 and "bad.npz is not a readable .npz file" in at.error[0].value
    assert not list(ui.uploads_dir().glob("*.npz"))

    good = ("good.npz", npz_bytes(**GOOD_NPZ), "application/octet-stream")
    at.file_uploader(key="upload").set_value(good).run()
    assert_ok(at)
    assert texts(at.error) == []
    assert texts(at.success) == ["Stored good (uploaded); it is now in the dataset list."]
    assert [p.name for p in ui.uploads_dir().glob("*.npz")] == ["good.npz"]
    assert "good (uploaded)" in at.selectbox(key="dataset").options


# --- Runs ---
def chart_traces(at: AppTest) -> list[dict]:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)["data"]


def test_runs_table_lists_every_run_and_why_one_is_damaged(runs):
    at = open_page("pages/runs.py")
    table = at.dataframe[0].value.set_index("run")  # rows by readable label
    label = {k: runs.label(k) for k in runs.ids if k != DAMAGED}
    damaged = f"{DAMAGED} (damaged)"
    assert set(table.index) == set(label.values()) | {damaged}
    assert [table.loc[label[k], "state"] for k in ("ae", "vae", "denoising", "queued")] == \
        ["done", "done", "done", "queued"]
    assert label["vae"].startswith("vae z=4 · digits · ")
    assert table.loc[label["ae"], "device"] == "CPU"
    assert [table.loc[label[k], "ETA"] for k in ("ae", "queued")] == ["finished", "waiting for a worker"]
    assert table.loc[damaged, "state"] == "damaged"
    assert table.loc[damaged, "note"].startswith(f"status of run {DAMAGED} is damaged")
    assert table.loc[label["ae"], "note"] == ""


def test_runs_curves_follow_the_selection(runs):
    at = open_page("pages/runs.py")
    # the queued run is preselected; it has logged nothing yet
    assert at.multiselect(key="curve_runs").value == [runs.ids["queued"]]
    assert "No steps logged yet." in texts(at.caption) and not at.get("plotly_chart")

    at.multiselect(key="curve_runs").set_value([runs.ids["ae"]]).run()
    traces = chart_traces(at)
    assert [t["name"] for t in traces] == ["Total loss", "Reconstruction"]
    logged = read_metrics(runs.root / runs.ids["ae"])
    assert traces[0]["x"] == [m["epoch"] for m in logged]
    assert traces[0]["y"] == pytest.approx([m["loss"] for m in logged])

    at.multiselect(key="curve_runs").set_value([runs.ids["ae"], runs.ids["vae"]]).run()
    names = [t["name"] for t in chart_traces(at)]
    ae, vae = runs.label("ae"), runs.label("vae")
    # several runs: each run's terms grouped under its label in the legend, one colour per run
    assert names == ["Total loss", "Reconstruction", "Total loss", "Reconstruction", "KL to the prior"]
    traces = chart_traces(at)
    assert [t["legendgrouptitle"]["text"] for t in traces] == [ae, ae, vae, vae, vae]
    assert len({t["line"]["color"] for t in traces[:2]} | {t["line"]["color"] for t in traces[2:]}) == 2
    assert "No steps logged yet." not in texts(at.caption)


def test_runs_final_metrics_for_finished_runs(runs):
    at = open_page("pages/runs.py")
    assert "Select finished runs to compare their evaluate metrics." in texts(at.caption)
    assert len(at.dataframe) == 1

    at.multiselect(key="curve_runs").set_value([runs.ids["ae"], runs.ids["vae"], runs.ids["queued"]]).run()
    assert_ok(at)
    assert len(at.dataframe) == 2
    metrics = at.dataframe[1].value.set_index("metric")  # rows by metric key, shown by human name
    assert list(metrics.columns) == [runs.label("ae"), runs.label("vae")]
    for key in ("ae", "vae"):
        scores = get_eval(runs.root / runs.ids[key])
        assert metrics.loc["recon_mse", runs.label(key)] == pytest.approx(scores["recon_mse"])
        assert metrics.loc["latent_dim", runs.label(key)] == dict(RUNS)[key]
    assert pd.isna(metrics.loc["kl", runs.label("ae")]) and metrics.loc["kl", runs.label("vae")] > 0


def test_runs_cancel_a_queued_run_then_resume_it(runs_copy, supervisor_calls, teacher):
    at = open_page("pages/runs.py", **teacher)
    at.selectbox(key="action_run").select(runs_copy.ids["ae"]).run()
    assert at.button(key="cancel").disabled and at.button(key="resume").disabled
    at.selectbox(key="action_run").select(runs_copy.ids["queued"]).run()
    assert not at.button(key="cancel").disabled and at.button(key="resume").disabled
    at.button(key="cancel").click().run()
    assert_ok(at)
    assert read_status(runs_copy.root / runs_copy.ids["queued"])["state"] == "cancelled"
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[runs_copy.label("queued"), "state"] == "cancelled"
    assert at.button(key="cancel").disabled and not at.button(key="resume").disabled
    assert texts(at.error) == [] and supervisor_calls == []

    at.button(key="resume").click().run()
    assert_ok(at)
    status = read_status(runs_copy.root / runs_copy.ids["queued"])
    assert (status["state"], status["resume"]) == ("queued", True)
    assert supervisor_calls == [runs_copy.root.resolve()]


def test_runs_delete_needs_the_confirmation(runs_copy, teacher):
    run_id = runs_copy.ids["vae"]
    at = open_page("pages/runs.py", **teacher)
    at.multiselect(key="curve_runs").set_value([runs_copy.ids["ae"], run_id])
    at.selectbox(key="action_run").select(run_id).run()
    assert at.button(key="delete").disabled

    at.checkbox(key="confirm_delete").check().run()
    assert not at.button(key="delete").disabled
    at.button(key="delete").click().run()
    assert_ok(at)
    assert not (runs_copy.root / run_id).exists()
    assert run_id not in set(at.dataframe[0].value["run"])
    assert run_id not in at.selectbox(key="action_run").options
    assert not at.checkbox(key="confirm_delete").value and at.button(key="delete").disabled
    # the deleted run leaves the curves too
    assert at.multiselect(key="curve_runs").value == [runs_copy.ids["ae"]]
    assert [t["name"] for t in chart_traces(at)] == ["Total loss", "Reconstruction"]


def test_runs_delete_a_damaged_folder(runs_copy, teacher):
    at = open_page("pages/runs.py", **teacher)
    at.selectbox(key="action_run").select(DAMAGED).run()
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete").click().run()
    assert_ok(at)
    assert not (runs_copy.root / DAMAGED).exists()
    assert DAMAGED not in set(at.dataframe[0].value["run"])


# --- Reconstructions ---
RUNS_KEY = "rec_runs.digits"  # one selection per dataset


def test_reconstructions_show_runs_and_pca(runs, media):
    at = open_page("pages/reconstructions.py")
    ae, den, vae = runs.label("ae"), runs.label("denoising"), runs.label("vae")
    # default: the two newest runs (no demo runs here); the choice goes into the URL
    assert at.multiselect(key=RUNS_KEY).value == [runs.ids["vae"], runs.ids["denoising"]]
    assert "runs" not in at.query_params  # the default needs no parameter
    at.multiselect(key=RUNS_KEY).set_value([runs.ids["ae"], runs.ids["denoising"]]).run()
    assert at.query_params["runs"] == f'{runs.ids["ae"]},{runs.ids["denoising"]}'
    labels = [label for label, _, _ in image_rows(at)]
    assert labels == ["original", ae, den, "PCA (2 components)", "PCA (4 components)",
                      "clean", "gaussian 0.30", ae, den, "PCA (2 components)", "PCA (4 components)"]
    rows = image_rows(at)
    # the originals are the seeded random test images, 8x8 drawn 12x with a 2-pixel gap
    ds = load_dataset("digits")
    index = pick_examples(ds.x_test, ds.y_test, "random", 10, 0)
    np.testing.assert_array_equal(picture(rows[0][2], media), image_grid([ds.x_test[index]], scale=12))
    for label, _, image in rows:
        assert picture(image, media).shape == (12 * 12, 10 * 10 * 12 + 24), label
    # the MSE shown beside each row is the table's
    table = at.dataframe[0].value.set_index("row")
    assert [mse for _, mse, _ in rows[1:5]] == pytest.approx(list(table["MSE per pixel"]), abs=5e-5)

    at.multiselect(key=RUNS_KEY).set_value([runs.ids["vae"]]).run()
    assert [label for label, _, _ in image_rows(at)][:3] == ["original", vae, "PCA (4 components)"]
    at.multiselect(key=RUNS_KEY).set_value([runs.ids["ae"], runs.ids["vae"], runs.ids["denoising"]]).run()
    assert [label for label, _, _ in image_rows(at)][:6] == \
        ["original", ae, vae, den, "PCA (2 components)", "PCA (4 components)"]

    at.multiselect(key=RUNS_KEY).set_value([]).run()
    assert "Choose at least one run." in texts(at.info) and not at.image


def open_reconstructions(runs) -> AppTest:
    """Reconstructions opened from a link that selects ae and denoising (``?runs=``)."""
    at = open_page("pages/reconstructions.py", runs=f'{runs.ids["ae"]},{runs.ids["denoising"]}')
    assert at.multiselect(key=RUNS_KEY).value == [runs.ids["ae"], runs.ids["denoising"]]
    return at


def test_reconstructions_noise_level_changes_the_noisy_images(runs, media):
    at = open_reconstructions(runs)

    def noisy():
        rows = image_rows(at)
        clean = next(i for i, row in enumerate(rows) if row[0] == "clean")
        return rows[clean][2].value, rows[clean + 1], at.dataframe[1].value

    clean_before, (label, mse, image), table = noisy()
    assert label == "gaussian 0.30" and table["row"][0] == label
    assert mse == pytest.approx(table["MSE per pixel"][0], abs=5e-5)
    before = picture(image, media)

    at.slider(key="noise_level").set_value(0.8).run()
    assert_ok(at)
    clean_after, (label, mse_after, image), table = noisy()
    assert label == "gaussian 0.80" and table["row"][0] == label
    assert clean_after == clean_before
    assert mse_after > 2 * mse
    assert np.abs(picture(image, media).astype(int) - before).mean() > 10

    at.selectbox(key="noise").select("masking").run()
    assert noisy()[1][0] == "masking 0.80"


def test_reconstructions_are_made_once_for_every_session(runs, monkeypatch):
    """A rerun, and another student's visit with the same choices, run no model and encode no
    picture again."""
    made = []
    for module, name in ((aelab.explore.reconstructions, "reconstruction_rows"),
                         (aelab.explore.reconstructions, "denoising_rows"),
                         (aelab.explore.latent, "png_bytes")):  # the PNG of each picture shown
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, real=real, name=name, **k: made.append(name) or real(*a, **k))
    first = open_reconstructions(runs)
    first.number_input(key="rec_seed").set_value(4321).run()  # examples no other test shows
    assert_ok(first)
    assert {"reconstruction_rows", "denoising_rows", "png_bytes"} <= set(made)
    made.clear()
    first.run()
    second = open_reconstructions(runs)
    seed_zero = list(made)  # seed 0: made here unless an earlier test showed it already
    second.number_input(key="rec_seed").set_value(4321).run()
    assert_ok(second)
    assert made == seed_zero, made
    assert [m.value for m in second.markdown] == [m.value for m in first.markdown]


def test_reconstructions_example_selection_changes_the_examples(runs, media):
    at = open_reconstructions(runs)
    ds = load_dataset("digits")
    assert at.selectbox(key="rec_worst").disabled
    shown = {}
    for how in ("random", "per class", "worst"):
        at.radio(key="rec_how").set_value(how).run()
        assert_ok(at)
        shown[how] = picture(image_rows(at)[0][2], media)
    assert not at.selectbox(key="rec_worst").disabled
    assert not np.array_equal(shown["random"], shown["per class"])
    assert not np.array_equal(shown["per class"], shown["worst"])
    assert not np.array_equal(shown["random"], shown["worst"])
    index = pick_examples(ds.x_test, ds.y_test, "per class", 10, 0)
    assert list(ds.y_test[index]) == list(range(10))
    np.testing.assert_array_equal(shown["per class"], image_grid([ds.x_test[index]], scale=12))

    # the worst examples of ae are reconstructed worse than the random ones
    def ae_mse():
        return next(mse for label, mse, _ in image_rows(at) if label == runs.label("ae"))

    worst = ae_mse()
    at.radio(key="rec_how").set_value("random").run()
    assert worst > ae_mse()
    # and a bigger count shows more images
    at.slider(key="rec_n").set_value(4).run()
    assert picture(image_rows(at)[0][2], media).shape[1] == 4 * 10 * 12 + 24
