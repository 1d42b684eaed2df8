"""aelab: `streamlit run app.py` - navigation over the pages in pages/."""
import streamlit as st

st.set_page_config(page_title="aelab", page_icon="🧭", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/runs.py", title="Runs", icon="📈"),
    st.Page("pages/reconstructions.py", title="Reconstructions", icon="🖼️"),
    st.Page("pages/latent.py", title="Latent space", icon="🌌"),
    st.Page("pages/traversal.py", title="Traversal", icon="🎚️"),
    st.Page("pages/generate.py", title="Generate", icon="✨"),
    st.Page("pages/inside.py", title="Inside", icon="🔬"),
    st.Page("pages/disentangle.py", title="Disentanglement", icon="🧩"),
]

st.navigation(PAGES).run()
