"""The panel in headless Chromium, as an owner uses it: first-run password, login, language,
night mode from the dashboard; each step leaves a screenshot (tests/web/browser.py)."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from appliance.store import Store
from tests.web import browser as b
from web import create_app, office


def test_first_run_asks_for_a_password_then_the_dashboard_opens_in_either_language(browser, data_dir):
    with Store(data_dir) as store:
        store.seed_defaults()
    app = create_app({"DATA_DIR": str(data_dir)})
    with b.serving(app) as base:
        browser.delete_all_cookies()
        browser.get(base + "/")
        assert browser.current_url.endswith("/auth/setup")
        b.fill(browser, "password", "short")
        b.fill(browser, "confirm", "short")
        b.shot(browser, "setup-uk")
        # The browser checks minlength itself; the server's own check is tested with Flask's client.
        assert browser.find_element(By.ID, "password").get_attribute("minlength") == "10"
        b.fill(browser, "password", "office-owner-2026")
        b.fill(browser, "confirm", "office-owner-2026")
        b.submit(browser, "save-password")
        assert browser.current_url == base + "/"
        assert b.text_of(browser, "phones-online") == "0 / 3"
        # This Chromium asks for English (Accept-Language: en-US): the panel follows it.
        assert "Dashboard" in browser.title
        b.shot(browser, "dashboard-en")
        browser.find_element(By.ID, "lang-uk").click()
        assert "Огляд" in browser.title
        b.shot(browser, "dashboard-uk")
        browser.set_window_size(390, 844)  # a phone's screen
        b.shot(browser, "dashboard-uk-phone")
        browser.set_window_size(1200, 900)
        b.submit(browser, "logout")
        assert "/auth/login" in browser.current_url
        browser.get(base + "/history/")
        assert "/auth/login" in browser.current_url, "after logout the panel is closed"
        b.log_in(browser, base, "office-owner-2026", fresh=False)
        assert b.text_of(browser, "phones-online") == "0 / 3"
        assert "Огляд" in browser.title, "the chosen language outlives the session"
        browser.find_element(By.ID, "lang-en").click()


def test_night_mode_from_the_dashboard(browser, panel_data):
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["night"] = {"office": {"name": "Office", "day": "group:office", "night": "voicemail:101"}}
        office.save(store, doc, "owner", "a night switch")
    app = create_app({"DATA_DIR": str(panel_data)})
    with b.serving(app) as base:
        from tests.web.conftest import OWNER_PASSWORD

        b.log_in(browser, base, OWNER_PASSWORD)
        before = b.text_of(browser, "night-mode-office")
        b.submit(browser, "night-toggle")
        after = b.text_of(browser, "night-mode-office")
        assert before != after and after in ("Ніч", "Night")
        b.shot(browser, "dashboard-night-uk")
        with Store(panel_data) as store:
            from appliance.night.service import NightService

            assert NightService(store).status()["switches"]["office"]["mode"] == "night"
        b.submit(browser, "night-auto")
        assert b.text_of(browser, "night-mode-office") == before


def test_every_page_of_the_menu_opens_in_both_languages(browser, panel_data, app):
    """A screenshot of each page in Ukrainian and English; none answers with an error."""
    from tests.web.conftest import OWNER_PASSWORD

    with app.test_request_context():
        from flask import url_for

        pages = [(endpoint.split(".")[0], url_for(endpoint)) for endpoint, _label in app.jinja_env.globals["NAV"]]
    assert len(pages) >= 10, pages
    with b.serving(create_app({"DATA_DIR": str(panel_data)})) as base:
        b.log_in(browser, base, OWNER_PASSWORD)
        for lang in ("uk", "en"):
            browser.get(f"{base}/lang/{lang}?next=/")
            for name, url in pages:
                browser.get(base + url)
                assert browser.current_url.split("?")[0] == base + url, f"{url} went to {browser.current_url}"
                h1 = browser.find_element(By.TAG_NAME, "h1").text
                assert h1, f"{url} has no heading"
                assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
                b.shot(browser, f"page-{name}-{lang}")


def test_an_uploaded_mp3_becomes_the_prompt_of_a_new_menu(browser, panel_data, tmp_path):
    import subprocess
    import wave

    from selenium.webdriver.support.ui import Select

    from tests.web.conftest import OWNER_PASSWORD

    mp3 = tmp_path / "greeting.mp3"
    # A real MP3 as an office would record it: 44.1 kHz stereo, 3 s.
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(mp3), "synth", "3", "sine", "440"], check=True)
    with b.serving(create_app({"DATA_DIR": str(panel_data)})) as base:
        b.log_in(browser, base, OWNER_PASSWORD)
        browser.get(base + "/prompts/")
        b.fill(browser, "name", "welcome")
        Select(browser.find_element(By.ID, "kind")).select_by_value("prompt")
        browser.find_element(By.ID, "file").send_keys(str(mp3))
        b.submit(browser, "upload-submit")
        assert not browser.find_elements(By.CLASS_NAME, "field-error"), browser.page_source[:3000]
        b.shot(browser, "prompt-uploaded")
        with wave.open(str(panel_data / "prompts" / "welcome.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert abs(w.getnframes() / 8000 - 3.0) < 0.1

        browser.get(base + "/menus/add")
        b.fill(browser, "ident", "main")
        b.fill(browser, "name", "Main menu")
        Select(browser.find_element(By.ID, "prompt")).select_by_value("welcome")
        b.fill(browser, "first_key", "1")
        Select(browser.find_element(By.ID, "first_to")).select_by_value("group:office")
        b.shot(browser, "menu-with-prompt")
        b.submit(browser, "save-menu")
        assert not browser.find_elements(By.CLASS_NAME, "field-error"), browser.page_source[:3000]
    with Store(panel_data) as store:
        menu = office.document(store)["routing"]["menus"]["main"]
    assert menu["prompt"] == "welcome" and menu["options"]["1"] == "group:office"


def test_a_call_record_with_its_recording_plays_in_the_browser(browser, panel_data, tmp_path):
    """The call's page in both languages: its path and a player whose MP3 the browser loads (its duration)."""
    import subprocess

    from tests.web.conftest import OWNER_PASSWORD
    from tests.web.test_calls import recorded_call

    four_seconds = tmp_path / "tone.mp3"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(four_seconds), "synth", "4", "sine", "600"], check=True)
    mp3 = recorded_call(panel_data, four_seconds.read_bytes())
    with b.serving(create_app({"DATA_DIR": str(panel_data)})) as base:
        b.log_in(browser, base, OWNER_PASSWORD)
        for lang in ("uk", "en"):
            browser.get(f"{base}/lang/{lang}?next=/calls/c1")
            player = browser.find_element(By.ID, "call-recording")
            # The page does not fetch the file until asked (preload="none"): ask, as a press on play would.
            from selenium.webdriver.support.ui import WebDriverWait

            browser.execute_script("document.getElementById('call-recording').load();")
            # The browser fetched and decoded the file: a player knows its length only then.
            duration = WebDriverWait(browser, 10).until(
                lambda d: d.execute_script("var a = document.getElementById('call-recording');"
                                           " return a.readyState >= 1 ? a.duration : null;"))
            assert abs(duration - 4.0) < 0.2, duration
            assert player.get_attribute("src").endswith("/calls/c1/recording")
            b.shot(browser, f"call-with-recording-{lang}")
        # The search finds it among the calls with a recording; the owner deletes it from its page.
        browser.get(f"{base}/calls/")
        browser.find_element(By.ID, "recorded").click()
        b.submit(browser, "search-calls")
        assert browser.current_url.endswith("recorded=y")
        link = browser.find_element(By.CSS_SELECTOR, "#calls a[href='/calls/c1']")
        link.click()
        WebDriverWait(browser, 10).until(b.gone(link))
        b.submit(browser, "delete-recording")
        assert browser.current_url.endswith("/calls/c1")
        assert not browser.find_elements(By.ID, "call-recording")
        assert "deleted in the panel" in browser.find_element(By.ID, "call-path").text
        b.shot(browser, "call-recording-deleted")
        assert not mp3.exists()
