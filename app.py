"""aelab: `streamlit run app.py` - st.navigation over the pages in pages/.

Every page file starts with ``ui.within_app()``: on a fresh server Streamlit serves a deep
link such as /traversal by running that file alone (its legacy mode for a pages/ folder);
the guard then runs this file, whose navigation shows the same page in the full app.
"""
import streamlit as st

from aelab import ui

st.set_page_config(page_title="aelab", page_icon=":material/explore:", layout="wide")
if not ui.all_loaded():  # a fresh server's first visit (a spinner shows after half a second)
    with st.spinner("Starting aelab: loading PyTorch and the plotting libraries (once per server start)..."):
        ui.load_all()

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/lesson.py", title="Lesson", icon=":material/school:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
    st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    st.Page("pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("pages/traversal.py", title="Traversal", icon=":material/tune:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("pages/inside.py", title="Inside", icon=":material/biotech:"),
    st.Page("pages/disentangle.py", title="Disentanglement", icon=":material/extension:"),
    st.Page("pages/study.py", title="Study", icon=":material/stacked_line_chart:"),
    st.Page("pages/challenge.py", title="Challenge", icon=":material/emoji_events:"),
]

ui.presenter_mode()  # ?present=1: larger text, no toolbar, sidebar collapsed
ui.teacher_sign_in()  # with $AELAB_TEACHER_TOKEN: the token field (or ?token=)
if not ui.is_teacher():  # the teacher (token, or the machine's own browser) needs no name
    ui.student_sign_in()  # a student's name, typed once (or ?student=), kept in a cookie
ui.run_app(PAGES)
