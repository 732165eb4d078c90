"""The playground page in a real headless Chromium: send a prompt, watch the streamed text arrive."""

import os
import shutil
import tempfile

import pytest
import requests

from tests.serving.helpers import LiveServer, demo_model_and_tokenizer
from tongues.serving import Engine

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    # tests/run.sh installs Debian's chromium and chromium-driver when they are missing.
    assert os.path.exists(CHROMIUM) and os.path.exists(DRIVER), \
        "install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tongues-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_page_streams_a_completion(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model, tokenizer = demo_model_and_tokenizer()
    with LiveServer(Engine(model, tokenizer).start(), model_name="demo") as server:
        browser.get(server.url + "/")
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "model-name").text == "demo")
        # The embedded model has no chat template: the Chat tab is off, and the page says how to turn it on.
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-chat"))
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-chat") == "off"
        assert browser.find_element(By.ID, "chat-note").is_displayed()
        assert not browser.find_element(By.ID, "tab-chat").is_enabled()
        assert "--chat-template" in browser.find_element(By.ID, "chat-note").text
        prompt = browser.find_element(By.ID, "prompt")
        prompt.clear()
        prompt.send_keys("Tous les êtres humains")
        for field, value in (("max-tokens", "60"), ("temperature", "0")):
            element = browser.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        # Count separate updates of the output: streamed text arrives in many pieces, not one.
        browser.execute_script("""
            window.updates = 0;
            new MutationObserver(() => { window.updates += 1; })
                .observe(document.getElementById('output'), {childList: true, characterData: true, subtree: true});
        """)
        browser.find_element(By.ID, "send").click()
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.ID, "status").text.startswith(("finished", "error")))
        assert browser.find_element(By.ID, "status").text in ("finished: length", "finished: stop")
        shown = browser.execute_script("return document.getElementById('output').textContent")
        whole = requests.post(server.url + "/v1/completions", timeout=60, json={
            "prompt": "Tous les êtres humains", "max_tokens": 60, "temperature": 0, "top_p": 0.95}).json()
        assert shown == whole["choices"][0]["text"] and shown
        assert browser.execute_script("return window.updates") > 1


def test_the_page_chats_with_glm4_and_stops_at_user(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.serving.test_glm_chat import CONVERSATION, glm_chat_engine

    engine, tokenizer, first = glm_chat_engine(tmp_path)
    with LiveServer(engine, model_name="glm-4-tiny") as server:
        browser.get(server.url + "/")
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "model-name").text == "glm-4-tiny")
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-chat"))
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-chat") == "on"
        assert not browser.find_element(By.ID, "chat-note").is_displayed()
        browser.find_element(By.ID, "tab-chat").click()
        for field, value in (("system", CONVERSATION[0]["content"]), ("message", CONVERSATION[1]["content"]),
                             ("temperature", "0")):
            element = browser.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        browser.find_element(By.ID, "send").click()
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.ID, "status").text.startswith(("finished", "error")))
        assert browser.find_element(By.ID, "status").text == "finished: stop"
        reply = browser.execute_script("return document.querySelector('#chat-log .assistant').textContent")
        assert reply == tokenizer.decode([first])
