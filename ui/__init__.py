"""Streamlit pieces shared by the pages: set-up, sign-in, model choice, safe text."""
