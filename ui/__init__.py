"""Streamlit widgets shared by the pages (the pages themselves stay thin views over core)."""
