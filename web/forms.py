"""Forms every area of the panel uses."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """A button's form (delete, remove, mark heard, a new password...): only its CSRF token."""
