"""Admin: accounts and roles, and the audit log of every change."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import accounts
from core.accounts import Permission, Role
from core.errors import GloveWatchError
from ui.text import md
from ui.widgets import page_setup

page = page_setup("Admin", "🔐", Permission.MANAGE_USERS)
store = page.store
st.title("Admin")

users_tab, audit_tab = st.tabs(["Users", "Audit log"])
with users_tab:
    users = accounts.list_users(store)
    if users:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "user": u.name,
                        "role": u.role,
                        "state": "disabled" if u.disabled else "active",
                        "password": "set" if u.password_hash else "single sign-on only",
                        "locked until": u.locked_until or "",
                        "last sign-in": u.last_login_at or "never",
                        "created": u.created_at,
                    }
                    for u in users
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info(
            "No accounts yet: this app runs as a local demo without sign-in. Create an "
            "admin account before serving it beyond this machine."
        )
    roles = [r.label for r in Role]
    with st.form("add-user"):
        st.subheader("Add a user")
        c = st.columns(3)
        name = c[0].text_input("User name")
        # the first account is an admin whatever is chosen (see accounts.add_user)
        role = c[1].selectbox("Role", roles, index=0 if users else roles.index("admin"))
        password = c[2].text_input("Password (at least 10 characters)", type="password")
        if st.form_submit_button("Add user"):
            try:
                rec = accounts.add_user(store, name, role, password, by=page.account.name)
                first = " (the first account is always an admin)" if rec.role != role else ""
                st.session_state["flash"] = f"User {rec.name} added as {rec.role}{first}."
                st.rerun()
            except GloveWatchError as exc:
                st.error(md(exc))
    if users:
        st.subheader("Change a user")
        by_name = {u.name: u for u in users}
        who = st.selectbox("User", list(by_name), key="admin-user")
        c = st.columns(3)
        new_role = c[0].selectbox(
            "Role", roles, index=roles.index(by_name[who].role), key="admin-role"
        )
        if c[0].button("Set role", key="admin-set-role"):
            try:
                accounts.set_role(store, who, new_role, by=page.account.name)
                st.rerun()
            except GloveWatchError as exc:
                st.error(md(exc))
        disabled = by_name[who].disabled
        if c[1].button("Enable" if disabled else "Disable", key="admin-disable"):
            try:
                accounts.set_disabled(store, who, not disabled, by=page.account.name)
                st.rerun()
            except GloveWatchError as exc:
                st.error(md(exc))
        new_password = c[2].text_input("New password", type="password", key="admin-pw")
        if c[2].button("Set password", key="admin-set-pw", disabled=not new_password):
            try:
                accounts.set_password(store, who, new_password, by=page.account.name)
                st.success("Password changed.")
            except GloveWatchError as exc:
                st.error(md(exc))
    if "flash" in st.session_state:
        st.success(md(st.session_state.pop("flash")))

with audit_tab:
    rows = accounts.audit_log(store, page.account, 500)
    if not rows:
        st.info("Nothing changed yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": r.at,
                        "who": r.actor,
                        "action": r.action,
                        "what": r.target or "",
                        "details": ", ".join(f"{k}: {v}" for k, v in r.details.items()),
                    }
                    for r in rows
                ]
            ),
            hide_index=True,
            width="stretch",
        )
