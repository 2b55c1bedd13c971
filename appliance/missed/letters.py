"""What the e-mails about missed calls say, in the appliance's language (`calls.language`: uk or en).

Pure functions from a case's row (and a few facts) to (subject, text).  Times
are shown in the office's time zone.  Ukrainian is written as an office
would write it, not word for word from the English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

# Where a call ended (`gave_up`, the kind of its last step), as people say it.
PLACES = {
    "uk": {"group": "у групі", "queue": "у черзі", "menu": "у голосовому меню", "voicemail": "на голосовій пошті",
           "extension": "на внутрішньому номері", "announcement": "на оголошенні"},
    "en": {"group": "ringing a group", "queue": "in a queue", "menu": "in the voice menu", "voicemail": "at voicemail",
           "extension": "ringing an extension", "announcement": "at an announcement"},
}


@dataclass(frozen=True)
class Facts:
    """What a letter shows beyond the case's row."""

    language: str            # "uk" or "en"
    tz: str                  # the office's time zone
    caller_name: str = ""    # from contacts


def _lang(facts: Facts) -> str:
    return "uk" if facts.language != "en" else "en"


def when(iso: str | None, facts: Facts) -> str:
    if not iso:
        return "—"
    at = datetime.fromisoformat(iso)
    at = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(ZoneInfo(facts.tz))
    return at.strftime("%d.%m.%Y %H:%M") if _lang(facts) == "uk" else at.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None, language: str) -> str:
    """"2 год 5 хв" / "2 h 5 min"; under a minute in seconds."""
    s = int(round(seconds or 0))
    uk = language != "en"
    if s < 60:
        return f"{s} с" if uk else f"{s} s"
    minutes = s // 60
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    units = ("дн", "год", "хв") if uk else ("d", "h", "min")
    parts = [f"{n} {u}" for n, u in zip((days, hours, mins), units) if n]
    return " ".join(parts)


def who(case: Mapping[str, Any], facts: Facts) -> str:
    number = case.get("caller") or ("прихований номер" if _lang(facts) == "uk" else "withheld number")
    return f"{facts.caller_name} ({number})" if facts.caller_name else number


def _calls(count: int, language: str) -> str:
    if language == "en":
        return f"{count} call" + ("" if count == 1 else "s")
    # Ukrainian plural: 1 дзвінок, 2-4 дзвінки, 5-20 дзвінків, 21 дзвінок...
    last, tens = count % 10, count % 100
    word = "дзвінок" if last == 1 and tens != 11 else "дзвінки" if 2 <= last <= 4 and not 12 <= tens <= 14 else "дзвінків"
    return f"{count} {word}"


def _details(case: Mapping[str, Any], facts: Facts) -> list[str]:
    lang = _lang(facts)
    place = PLACES[lang].get(str(case.get("gave_up") or ""), "")
    if lang == "uk":
        lines = [f"Хто телефонував: {who(case, facts)}",
                 f"Набраний номер: {case.get('dialled') or '—'}",
                 f"Перший дзвінок: {when(case.get('opened_at'), facts)}",
                 f"Усього: {_calls(int(case.get('count') or 1), lang)}, чекав {duration(case.get('waited_s'), lang)}"]
        if place:
            lines.append(f"Дзвінок закінчився {place}")
        lines.append(f"Справа №{case.get('id')}")
    else:
        lines = [f"Caller: {who(case, facts)}",
                 f"Number dialled: {case.get('dialled') or '—'}",
                 f"First call: {when(case.get('opened_at'), facts)}",
                 f"In all: {_calls(int(case.get('count') or 1), lang)}, waited {duration(case.get('waited_s'), lang)}"]
        if place:
            lines.append(f"The call ended {place}")
        lines.append(f"Case #{case.get('id')}")
    return lines


def _footer(facts: Facts) -> list[str]:
    if _lang(facts) == "uk":
        text = ["", "Справа закриється сама, щойно ви передзвоните і поговорите з клієнтом. "
                    "Якщо питання вирішено інакше, позначте справу виконаною на сторінці «Пропущені дзвінки» панелі."]
    else:
        text = ["", "The case closes by itself once you call the customer back and talk. "
                    "If it was settled some other way, mark it done on the panel's Missed calls page."]
    return text


def new_case(case: Mapping[str, Any], facts: Facts) -> tuple[str, str]:
    """To the person a new case was given."""
    if _lang(facts) == "uk":
        subject = f"Пропущений дзвінок: {who(case, facts)}"
        head = ["Вам доручено пропущений дзвінок. Будь ласка, передзвоніть клієнтові.", ""]
    else:
        subject = f"Missed call: {who(case, facts)}"
        head = ["A missed call was given to you. Please call the customer back.", ""]
    return subject, "\n".join([*head, *_details(case, facts), *_footer(facts)]) + "\n"


def voicemail(case: Mapping[str, Any], facts: Facts, attached: bool = True) -> tuple[str, str]:
    """A customer left a message; the recording goes with it (or the text says where to hear it)."""
    if _lang(facts) == "uk":
        subject = f"Голосове повідомлення від {who(case, facts)}"
        head = ["Клієнт не додзвонився і залишив голосове повідомлення"
                + (" — запис у вкладенні." if attached else "; прослухати його можна в панелі."), ""]
    else:
        subject = f"Voicemail from {who(case, facts)}"
        head = ["A customer could not reach anyone and left a message"
                + (": the recording is attached." if attached else "; listen to it in the panel."), ""]
    return subject, "\n".join([*head, *_details(case, facts), *_footer(facts)]) + "\n"


def escalated(case: Mapping[str, Any], facts: Facts, minutes: int, before: str | None) -> tuple[str, str]:
    """To whom a case was escalated: nobody acted on it within the deadline."""
    lang = _lang(facts)
    took = duration(minutes * 60, lang)
    if lang == "uk":
        subject = f"Пропущений дзвінок без відповіді понад {took}: {who(case, facts)}"
        was = f" (був доручений: {before})" if before else ""
        head = [f"Цим пропущеним дзвінком ніхто не займався {took} робочого часу, тож тепер він доручений вам{was}.",
                ""]
    else:
        subject = f"Missed call unanswered for over {took}: {who(case, facts)}"
        was = f" (it was with {before})" if before else ""
        head = [f"Nobody acted on this missed call within {took} of working time, so it is now yours{was}.", ""]
    return subject, "\n".join([*head, *_details(case, facts), *_footer(facts)]) + "\n"


def summary(cases: Sequence[Mapping[str, Any]], names: Mapping[str, str], facts: Facts,
            now: datetime) -> tuple[str, str]:
    """The owner's daily list of open cases, oldest first."""
    lang = _lang(facts)
    lines: list[str] = []
    for c in cases:
        name = names.get(str(c.get("caller") or ""), "")
        person = who(c, Facts(facts.language, facts.tz, name))
        opened = datetime.fromisoformat(str(c["opened_at"]))
        opened = opened if opened.tzinfo else opened.replace(tzinfo=timezone.utc)
        open_for = duration((now - opened).total_seconds(), lang)
        to = c.get("assigned_to") or ("нікому" if lang == "uk" else "nobody")
        if lang == "uk":
            lines.append(f"- {person}: {_calls(int(c.get('count') or 1), lang)}, перший {when(c.get('opened_at'), facts)}, "
                         f"відкрита {open_for}, доручена: {to}")
        else:
            lines.append(f"- {person}: {_calls(int(c.get('count') or 1), lang)}, first {when(c.get('opened_at'), facts)}, "
                         f"open for {open_for}, assigned to {to}")
    n = len(cases)
    if lang == "uk":
        subject = f"Необроблені пропущені дзвінки: {n}"
        head = [f"Станом на {when(now.isoformat(), facts)} без відповіді залишаються ці пропущені дзвінки "
                "(спершу найдавніші):", ""]
        tail = ["", "Закрити справу можна на сторінці «Пропущені дзвінки» панелі."]
    else:
        subject = f"Unhandled missed calls: {n}"
        head = [f"As of {when(now.isoformat(), facts)} these missed calls are still open (oldest first):", ""]
        tail = ["", "Close a case on the panel's Missed calls page."]
    return subject, "\n".join([*head, *lines, *tail]) + "\n"
