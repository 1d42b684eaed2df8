"""Challenge: the teacher sets a class challenge; students enter runs within its locked
settings; the leaderboard ranks every finished run live (aelab.ui.challenge)."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import streamlit as st

from aelab.ui import challenge as board

presenter = bool(st.session_state.get("present"))
current = board.from_url()  # ?id=c-1a2b3c
if current is None or not presenter:  # the projector gives the challenge's name the top line
    st.title("Challenge")
if current is None:
    if ui.is_teacher():
        board.teacher_form()
    board.listing()
    st.stop()

if presenter:
    st.title(current.name)
else:
    st.header(current.name)
board.header(current, presenter)
board.leaderboard(current.id, presenter)  # presenter mode: large, refreshed every 3 s
if not current.closed and not presenter:
    board.entry_form(current)
