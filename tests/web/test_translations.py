"""Every message of the panel has its Ukrainian translation, with the same placeholders, in one file."""

from __future__ import annotations

from collections import Counter

from babel.messages.pofile import read_po

from web.messages import WEB, problems, used
from web.i18n import load


def test_every_message_is_translated_with_its_placeholders():
    assert problems("uk") == []


def test_a_message_lives_in_one_catalog_only():
    seen: Counter[str] = Counter()
    for po in sorted((WEB / "translations" / "uk").glob("*.po")):
        with po.open("rb") as f:
            seen.update(m.id for m in read_po(f) if m.id)
    assert [msgid for msgid, n in seen.items() if n > 1] == []


def test_the_messages_are_found_in_code_and_templates():
    found = used()
    assert "Wrong password." in found and "Switch day/night" in found
    assert load("uk").gettext("Wrong password.") == "Хибний пароль."
