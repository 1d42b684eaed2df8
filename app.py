"""aelab: `streamlit run app.py` - st.navigation over the pages in views/.

The folder is not called pages/: Streamlit would treat that name as its legacy
multi-page app and serve deep links such as /traversal without running this file.
"""
import streamlit as st

st.set_page_config(page_title="aelab", page_icon=":material/explore:", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/runs.py", title="Runs", icon=":material/monitoring:"),
    st.Page("views/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    st.Page("views/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("views/traversal.py", title="Traversal", icon=":material/tune:"),
    st.Page("views/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("views/inside.py", title="Inside", icon=":material/biotech:"),
    st.Page("views/disentangle.py", title="Disentanglement", icon=":material/extension:"),
]

st.navigation(PAGES).run()
