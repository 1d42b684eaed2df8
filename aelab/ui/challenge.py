"""The Challenge page's parts: the teacher's form and controls, a student's entry within the
locked settings, and the live leaderboard (the rules: ``aelab.runs.challenges``)."""
from __future__ import annotations

import base64
import html

import pandas as pd
import streamlit as st

from aelab.config import TrainConfig
from aelab.errors import AelabError
from aelab.metrics.names import metric_help, metric_name
from aelab.models import get_variant, list_variants
from aelab.models.base import AEConfig
from aelab.runs import challenges
from aelab.runs.challenges import Challenge
from aelab.ui import identity
from aelab.ui.folder import run_ref, runs_dir
from aelab.ui.loaders import dataset_for, model_for
from aelab.ui.sessions import dataset_choices, is_teacher, submit_run
from aelab.ui.widgets import settings_widgets, show_error

PARAM = "id"  # /challenge?id=c-1a2b3c
BOARD_TTL = 2  # seconds the ranked rows are shared by every session
THUMBNAILS = 20  # the leaderboard's first rows get a picture of their reconstructions


def link_for(challenge_id: str) -> str:
    """The address a student opens: this server's /challenge?id=..."""
    url = str(getattr(st.context, "url", "") or "")
    base = url.split("?")[0].rstrip("/")
    base = base.rsplit("/", 1)[0] if base.endswith("/challenge") else base
    return f"{base}/challenge?{PARAM}={challenge_id}"


def from_url() -> Challenge | None:
    """The challenge of ``?id=``, or None without one; a bad id is said and stops the page."""
    wanted = st.query_params.get(PARAM)
    if not wanted:
        return None
    try:
        return challenges.load(runs_dir(), wanted)
    except AelabError as exc:
        show_error(exc)
        st.stop()


def teacher_form() -> None:
    """The teacher makes a challenge: name, locked datasets and variants, code size, budget, goal."""
    with st.form("new_challenge"):
        st.subheader("New challenge")
        name = st.text_input("Name", key="new.name", placeholder="Smallest error at code size 4")
        datasets = st.multiselect("Datasets (locked)", dataset_choices(), default=["digits"], key="new.datasets")
        variants = st.multiselect("Variants (locked)", list_variants(), default=["ae"], key="new.variants")
        size = st.number_input("Code size (0: the student chooses)", 0, 256, 4, key="new.latent_dim")
        epochs = st.number_input("Budget: epochs", 1, challenges.MAX_EPOCHS, 5, key="new.epochs")
        minutes = st.number_input("Budget: minutes of training (0: no limit)", 0.0, challenges.MAX_MINUTES,
                                  3.0, key="new.minutes")
        goal = st.selectbox("Goal", list(challenges.GOALS), format_func=lambda g: challenges.GOALS[g].title,
                            key="new.goal")
        if st.form_submit_button("Create challenge", type="primary"):
            try:
                made = challenges.create(runs_dir(), name, datasets, variants, int(size) or None, int(epochs),
                                         float(minutes), goal, known_datasets=dataset_choices())
            except AelabError as exc:
                show_error(exc)
            else:
                st.success(f"Created {made.name}. Give the class this link: {link_for(made.id)}")


def listing() -> None:
    """The challenges of this server, as links (closed ones only for the teacher)."""
    found = [c for c in challenges.list_all(runs_dir()) if is_teacher() or not c.closed]
    if not found:
        st.info("No challenge yet: the teacher creates one here and hands out its link.")
    for c in found:
        st.page_link("pages/challenge.py", label=f"{c.name} ({'closed' if c.closed else 'open'})",
                     query_params={PARAM: c.id}, icon=":material/emoji_events:")


def header(challenge: Challenge, presenter: bool = False) -> None:
    """The goal and what is locked (one line on the projector, where the board needs the room)."""
    if presenter:
        st.markdown(f"**Goal:** {challenge.goal_info.title} · {challenge.locked_text()}")
    else:
        st.markdown(f"**Goal:** {challenge.goal_info.title}  \n**Locked:** {challenge.locked_text()}")
    if challenge.closed:
        st.info("This challenge is closed: it takes no new entries; the leaderboard stays.",
                icon=":material/lock:")


def teacher_controls(challenge: Challenge, rows: list[dict]) -> None:
    """The link to hand out, closing, the CSV."""
    st.code(link_for(challenge.id), language=None)
    left, right = st.columns(2)
    if not challenge.closed and left.button("Close the challenge", key="ch.close",
                                            help="No new entries; runs already started still count"):
        challenges.close(runs_dir(), challenge.id)
        st.rerun()
    right.download_button("Export the leaderboard (CSV)", challenges.csv_text(challenge, rows),
                          file_name=f"{challenge.id}.csv", mime="text/csv", key="ch.csv")


def entry_form(challenge: Challenge) -> None:
    """A student's entry: only the free settings are editable; the locked ones are shown
    disabled and checked again on the server (``challenges.check_entry``)."""
    st.subheader("Your entry")
    st.caption("The greyed settings are locked by the challenge; change any of the others, then start. "
               "Your run joins the leaderboard once it has trained and been scored.")
    if not is_teacher() and not (identity.current() and identity.current().name):
        st.info("Type your name in the sidebar first: the leaderboard shows it.", icon=":material/person:")
    k = f"ch.{challenge.id}"  # per challenge: a value left from another challenge's form never fills a locked field
    left, right = st.columns(2)
    with left:
        dataset = st.selectbox("Dataset", challenge.datasets, key=f"{k}.dataset",
                               disabled=len(challenge.datasets) == 1)
        variant = st.selectbox("Variant", challenge.variants, key=f"{k}.variant",
                               disabled=len(challenge.variants) == 1)
        st.markdown(get_variant(variant).about)
    with right:
        locked = {"latent_dim": challenge.latent_dim} if challenge.latent_dim else {}
        common = settings_widgets(AEConfig, key=f"{k}.common", only=["latent_dim", "arch", "hidden"], locked=locked)
        own = settings_widgets(get_variant(variant).Config, key=f"{k}.own.{variant}",
                               skip=tuple(common) + ("hidden", "likelihood"))
        train = settings_widgets(TrainConfig, key=f"{k}.train", only=["epochs", "max_minutes", "batch_size",
                                                                    "lr", "seed"],
                                 locked=challenges.locked_train(challenge))
    if st.button("Start my entry", type="primary", key="ch.start"):
        try:
            run_id = enter(challenge.id, variant, dataset, {**common, **own},
                           {**train, "caches": True, "device": "cpu"})
        except AelabError as exc:
            show_error(exc)
        else:
            st.success(f"Started {run_id}: it joins the leaderboard when it has finished and been scored.")


def enter(challenge_id: str, variant: str, dataset: str, model: dict, train: dict) -> str:
    """Check the entry against the challenge (read again: it may have closed) and the run
    settings, then start it as this student's; nothing is written before both pass."""
    from aelab.training.setup import validate_run

    challenge = challenges.load(runs_dir(), challenge_id)
    if not is_teacher() and not identity.me().name:
        raise challenges.ChallengeError("Type your name in the sidebar first: the leaderboard shows it.")
    challenges.check_entry(challenge, variant, dataset, model, train)
    validate_run(variant, dataset, model, train)
    return submit_run(variant, dataset, model, train, challenge=challenge.id)


@st.cache_data(ttl=BOARD_TTL, show_spinner=False, max_entries=16)
def _entries(root: str, challenge_id: str) -> tuple[Challenge, list[dict]]:
    """The ranked rows, shared by every session for BOARD_TTL seconds (30 students polling cost one scan)."""
    challenge = challenges.load(root, challenge_id)
    return challenge, challenges.entries(root, challenge)


@st.cache_data(max_entries=256, show_spinner=False)
def _thumbnail(root: str, run_id: str, sha256: str) -> str:
    """Six test images over their reconstructions, as a PNG data URI (once per run and weights)."""
    from aelab.explore.latent import png_bytes
    from aelab.explore.reconstructions import image_grid, pick_examples
    from aelab.metrics.evaluate import reconstruct_array

    ref = run_ref(run_id)
    model, ds = model_for(ref), dataset_for(ref.config["dataset"])
    x, y = ds.evaluation_split()
    picked = pick_examples(x, y, "per class", n=6)
    recon = reconstruct_array(model, x[picked], None if y is None else y[picked])
    scale = max(1, 48 // x.shape[-1])
    picture = image_grid([x[picked], recon], scale=scale)
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()


def rows_for(challenge_id: str) -> tuple[Challenge, list[dict]]:
    return _entries(str(runs_dir()), challenge_id)


def leaderboard(challenge_id: str, presenter: bool) -> None:
    """The ranked table with thumbnails and PCA's line to beat; refreshed live (every 3 s in
    presenter mode, 10 s otherwise)."""

    @st.fragment(run_every=3 if presenter else 10)
    def board() -> None:
        challenge, rows = rows_for(challenge_id)
        goal = challenge.goal_info
        line = challenges.baseline_line(rows)
        if not presenter:
            st.subheader("Leaderboard")
        better = f"{'lower' if goal.lower else 'higher'} is better"
        said = [f"**Score:** {metric_name(goal.key)}, {better}"] if presenter else []  # its column is "score"
        if line is not None:
            said.append(f"**Line to beat:** PCA at the same code size scores **{line:.4g}**"
                        + ("" if presenter else f" ({better})."))
        if said:
            st.markdown("  \n".join(said))
        if line is None and goal.baseline is None:
            st.caption("No PCA baseline for this goal (PCA's codes are not scored for disentanglement).")
        if not rows:
            st.info("No entries yet: the first finished run appears here.", icon=":material/hourglass_top:")
            return
        mine = identity.current().id if identity.current() else None
        table = []
        for i, r in enumerate(rows):
            picture = None
            if r["score"] is not None and i < THUMBNAILS:
                try:
                    ref = run_ref(r["id"])
                    picture = _thumbnail(str(ref.root), r["id"], ref.weights_sha256())
                except AelabError:
                    picture = None
            table.append({"rank": str(r["rank"] or ""),
                          "student": r["student"] + (" (you)" if mine and _owned(r, mine) else ""),
                          "score": "n/a - not scored yet" if r["score"] is None else f"{r['score']:.4g}",
                          "beats PCA": _beats(r, goal), "settings": r["settings"],
                          "reconstructions": picture, "state": r["note"]})
        if presenter:
            projector_table(table)
        else:
            st.dataframe(pd.DataFrame(table), hide_index=True, key="leaderboard", width="stretch",
                         row_height=64, height=min(len(table), 12) * 64 + 40,  # and the header row
                         column_config={"score": st.column_config.TextColumn(
                                            metric_name(goal.key), help=metric_help(goal.key) or goal.title),
                                        "beats PCA": st.column_config.TextColumn(
                                            "beats PCA",
                                            help="Whether the run's score beats PCA's at the same code size"),
                                        "settings": st.column_config.TextColumn(
                                            "settings", help="What the student changed from the defaults"),
                                        "reconstructions": st.column_config.ImageColumn(
                                            "reconstructions", help="top: test images; bottom: the run's",
                                            width=192)})  # the thumbnail is 3 times as wide as tall
        if is_teacher():
            teacher_controls(challenge, rows)

    board()


PROJECTOR_CSS = """<style>
table.aelab-board { border-collapse: collapse; width: 100%; font-size: 1rem; }
table.aelab-board th { text-align: left; font-weight: 600; border-bottom: 2px solid #999; padding: 0.2rem 0.5rem; }
table.aelab-board td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.5rem; vertical-align: middle; }
table.aelab-board td.rank { font-weight: 700; font-size: 1.3rem; }
table.aelab-board th, table.aelab-board td { white-space: nowrap; }
table.aelab-board td.settings { white-space: normal; }
table.aelab-board img { height: 180px; image-rendering: pixelated; }
</style>"""  # 180 px thumbnails: 2 rows of 65-px tiles (a 132-px picture of 48-px tiles)


def projector_table(table: list[dict]) -> None:
    """The leaderboard for the room: large text and thumbnails (an HTML table: the data grid's
    text does not grow with presenter mode); the state column stays on the teacher's screen."""
    columns = ["rank", "student", "score", "beats PCA", "settings", "reconstructions"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for row in table:
        cells = [f'<td class="rank">{html.escape(row["rank"])}</td>']
        cells += [f"<td>{html.escape(str(row[c]))}</td>" for c in columns[1:4]]
        cells.append(f'<td class="settings">{html.escape(row["settings"])}</td>')
        picture = row["reconstructions"]
        cells.append(f'<td><img src="{picture}" alt="test images over the run\'s reconstructions"></td>'
                     if picture else "<td></td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    st.html(f'{PROJECTOR_CSS}<table class="aelab-board"><tr>{head}</tr>{"".join(body)}</table>')


def _beats(row: dict, goal) -> str:
    """yes / no against PCA's score, or n/a with why."""
    if row["score"] is None:
        return "n/a - not scored yet"
    if row["baseline"] is None:
        return "n/a - no PCA score for this goal"
    return "yes" if (row["score"] < row["baseline"] if goal.lower else row["score"] > row["baseline"]) else "no"


def _owned(row: dict, me: str) -> bool:
    from aelab.runs.ownership import read_owner

    return read_owner(runs_dir() / row["id"]) == me
