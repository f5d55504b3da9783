#!/usr/bin/env python3
"""The secrecy console in headless Chromium, against a real `mijian-collector serve`.

Walks what an officer and a viewer do, checks that nothing a workstation sent runs as script
(the browser's console log and the DOM), and the accessibility basics: labels, headings,
contrast of the status colours, keyboard navigation. A screenshot of every page goes to --out.
Prints 'N passed, N failed' and exits non-zero when a check failed.
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

HOSTILE_HOST = "<script>alert(\"host\")</script>\"><img src=x onerror=alert(1)>javascript:alert(1)"
HOSTILE_PRODUCT = "<script>alert('usb')</script>\"><img src=x onerror=alert(2)>"
FAILING_ASSET = "JSJ-666"
OFFICER = ("officer", "correct horse battery")
VIEWER = ("viewer", "viewer password 1")
WAIVER_REASON = "test stick awaiting registration 2026-17"


class Run:
    def __init__(self, base, out):
        self.base = base
        self.out = out
        self.passed = 0
        self.failed = 0
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=zh-CN"]:
            options.add_argument(arg)
        options.accept_insecure_certs = True
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(30)

    def check(self, condition, what):
        if condition:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}")

    def get(self, path):
        self.driver.get(self.base + path)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(self.out, f"{name}.png"))

    def text(self):
        for _ in range(20):
            try:
                return self.driver.find_element(By.TAG_NAME, "body").text
            except StaleElementReferenceException:
                time.sleep(0.1)
        raise RuntimeError("the page kept changing under the test")

    def navigating(self, action):
        """Runs `action` (a click, a key, a form submit) and waits until the next page has loaded."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        action()
        WebDriverWait(self.driver, 30).until(expected_conditions.staleness_of(old))
        WebDriverWait(self.driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def path(self):
        return self.driver.current_url[len(self.base):]

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    # --- what every page must be

    def inert(self, where):
        """Nothing from a workstation became markup: no script, image, handler or javascript: link, no alert."""
        found = self.js("""
            const handlers = [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on')));
            return {scripts: document.scripts.length, images: document.images.length, handlers: handlers.length,
                    jsLinks: [...document.querySelectorAll('a[href],form[action]')].filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('action') || '')).length,
                    frames: document.querySelectorAll('iframe,object,embed').length};
        """)
        self.check(found == {"scripts": 0, "images": 0, "handlers": 0, "jsLinks": 0, "frames": 0}, f"{where}: the DOM holds no script, image, handler, javascript: link or frame {found}")
        try:
            alert = self.driver.switch_to.alert
            self.check(False, f"{where}: an alert opened ({alert.text})")
            alert.dismiss()
        except NoAlertPresentException:
            self.check(True, f"{where}: no alert opened")

    def accessible(self, where):
        """Labels, headings, language."""
        report = self.js("""
            const fields = [...document.querySelectorAll('input:not([type=hidden]),select,textarea')];
            const unlabelled = fields.filter(f => !(f.labels && f.labels.length) && !f.getAttribute('aria-label')).map(f => f.name);
            const levels = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]);
            let skips = 0; for (let i = 1; i < levels.length; i++) if (levels[i] > levels[i-1] + 1) skips++;
            const buttons = [...document.querySelectorAll('button')].filter(b => !b.textContent.trim()).length;
            return {unlabelled, h1: levels.filter(l => l === 1).length, skips, lang: document.documentElement.lang, emptyButtons: buttons};
        """)
        self.check(report["unlabelled"] == [], f"{where}: every field has a label {report['unlabelled']}")
        self.check(report["h1"] == 1 and report["skips"] == 0, f"{where}: one h1 and no skipped heading level {report}")
        self.check(report["lang"] in ("zh-CN", "en"), f"{where}: the page says its language ({report['lang']})")
        self.check(report["emptyButtons"] == 0, f"{where}: every button says what it does")

    def login(self, account):
        self.driver.delete_all_cookies()
        self.get("/login")
        self.driver.find_element(By.ID, "name").send_keys(account[0])
        field = self.driver.find_element(By.ID, "password")
        field.send_keys(account[1])
        self.navigating(lambda: field.send_keys(Keys.ENTER))

    def post_without_token(self, action, fields):
        """Submits a form to `action` built in the page, without the CSRF token (as another page would)."""
        script = """
            const form = document.createElement('form'); form.method = 'post'; form.action = arguments[0];
            for (const [k, v] of Object.entries(arguments[1])) { const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; form.appendChild(i); }
            document.body.appendChild(form); form.submit();
        """
        self.navigating(lambda: self.js(script, action, fields))


def contrast(foreground, background):
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    def luminance(rgb):
        r, g, b = (channel(x) for x in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    a, b = luminance(foreground), luminance(background)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def rgb(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    run = Run(args.base, args.out)
    d = run.driver
    try:
        # Unauthenticated: redirected to the login page, keeping where it was going.
        run.get("/machines?state=failing")
        run.check(run.path().startswith("/login?next=%2Fmachines%3Fstate%3Dfailing"), f"an unauthenticated request is redirected to the login page ({run.path()})")
        run.shot("01-login")
        run.accessible("login")

        # Keyboard only: the account field has the focus, Tab moves to the password, Enter logs in.
        run.check(run.js("return document.activeElement.id") == "name", "the login page focuses the account field")
        run.login(OFFICER)
        run.check(run.path() in ("/", ""), f"the officer is logged in and lands on the overview ({run.path()})")
        cookies = {c["name"]: c for c in d.get_cookies()}
        session = cookies.get("mj_session", {})
        run.check(session.get("httpOnly") and session.get("secure") and session.get("sameSite") == "Strict", f"the session cookie is HttpOnly, Secure, SameSite=Strict {session}")

        # Overview: the failing machine is counted; its card opens the filtered list.
        # From the top of a page, the first Tab reaches the skip link, which moves to the content.
        run.js("document.activeElement.blur()")
        ActionChains(d).send_keys(Keys.TAB).perform()
        first = run.js("return document.activeElement.className")
        run.check(first == "skip", f"the first Tab reaches the skip link ({first})")
        ActionChains(d).send_keys(Keys.ENTER).perform()
        run.check(run.js("return document.activeElement.id") == "main", "the skip link moves the focus to the content")
        run.shot("02-overview")
        run.accessible("overview")
        run.inert("overview")
        failing = d.find_element(By.CSS_SELECTOR, "a.card.s-failing")
        run.check(failing.find_element(By.CLASS_NAME, "n").text == "2", "the overview counts two failing machines")
        run.navigating(failing.click)
        run.check("state=failing" in run.path(), "the failing card opens the filtered list")
        run.shot("03-machines-failing")
        run.accessible("machines")
        run.inert("machines")
        link = d.find_element(By.PARTIAL_LINK_TEXT, "<script>alert(\"host\")")
        run.check(link.text == HOSTILE_HOST, "the hostile host name is shown as the text it is")
        run.check(FAILING_ASSET in run.text(), "the failing machine's asset number is listed")

        # Keyboard: Tab reaches the machine's link and Enter opens it.
        for _ in range(60):
            d.switch_to.active_element.send_keys(Keys.TAB)
            if run.js("return document.activeElement === arguments[0]", link):
                break
        run.check(run.js("return document.activeElement === arguments[0]", link), "Tab reaches the machine's link")
        run.navigating(lambda: d.switch_to.active_element.send_keys(Keys.ENTER))
        run.check(run.path().startswith("/machines/") and "reports" not in run.path(), f"Enter opens the machine ({run.path()})")
        host_id = run.path().split("/")[2].split("?")[0]
        focus = run.js("const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth")
        run.shot("04-machine")
        run.accessible("machine")
        run.inert("machine")

        # Open the evidence of the failing finding.
        summary = d.find_element(By.CSS_SELECTOR, "table.findings details summary")
        summary.click()
        details = summary.find_element(By.XPATH, "..")
        run.check(details.get_attribute("open") is not None, "the evidence opens")
        run.check("<script>alert('usb')</script>" in details.text and "<img src=x onerror=alert(2)>" in details.text, "the evidence shows the hostile USB product string as text")
        run.shot("05-machine-evidence")
        run.inert("machine with evidence open")
        events = run.text()
        run.check("usb.arrival" in events and "<script>alert('usb')</script>" in events, "the timeline shows the USB event with its product string as text")

        # Keyboard focus is visible.
        d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        focus = run.js("const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth")
        run.check(focus.startswith("solid") and not focus.endswith(" 0px"), f"the focused element is outlined ({focus})")

        # Record a waiver for the failing machine, and find it in the printed self-assessment.
        run.get(f"/waivers?host={host_id}")
        run.accessible("waivers")
        d.find_element(By.CSS_SELECTOR, "#w-rule option[value='usb.storage']").click()
        d.find_element(By.ID, "w-reason").send_keys(WAIVER_REASON)
        d.find_element(By.ID, "w-approver").send_keys("李四")
        expiry = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
        run.js("document.getElementById('w-expires').value = arguments[0]", expiry)
        run.navigating(d.find_element(By.CSS_SELECTOR, "form[action='/waivers'] button[type=submit]").click)
        run.check("已记录豁免" in run.text(), "the waiver is recorded")
        run.check(WAIVER_REASON in run.text() and "recorded" in run.text(), "the waiver and its audit-log entry are listed")
        run.shot("06-waivers")

        run.get("/assessment")
        run.accessible("assessment")
        run.inert("assessment")
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        nav_hidden = run.js("return getComputedStyle(document.querySelector('header.top')).display") == "none"
        run.check(nav_hidden, "printing hides the menu")
        body = run.text()
        run.check(WAIVER_REASON in body and "已豁免" in body, "the printed self-assessment shows the waiver as its own status")
        run.check("usb 0781:5583" in body and "不符合" in body, "the waived finding is still printed, failing")
        run.shot("07-assessment-print")
        pdf = d.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
        path = os.path.join(args.out, "self-assessment.pdf")
        with open(path, "wb") as f:
            f.write(base64.b64decode(pdf["data"]))
        # Table cells wrap, so the reason's words are looked for in the waivers section, one by one.
        text = subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True).stdout
        section = text.split("豁免（不隐藏任何检查结果）")[-1]
        run.check("豁免（不隐藏任何检查结果）" in text and all(word in section for word in WAIVER_REASON.split()) and "已" in section,
                  "the PDF the browser prints holds the waivers section with the reason")
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

        # A form without its CSRF token is refused, and changes nothing.
        run.post_without_token("/waivers", {"host": host_id, "rule": "usb.history", "reason": "forged", "approver": "nobody", "expires": expiry})
        run.check("CSRF" in run.text(), "a form without its CSRF token is refused")
        run.get("/waivers")
        run.check("forged" not in run.text(), "the forged waiver was not recorded")

        for path, name in [("/rules", "08-rules"), ("/media", "09-media"), ("/enrolment", "10-enrolment")]:
            run.get(path)
            run.shot(name)
            run.accessible(path)
            run.inert(path)
        run.get("/media")
        run.check("javascript:alert(3)//<b>x</b>" in run.text(), "the hostile serial is shown as text on the media page")
        run.check("?lang=" not in run.path(), "pages are Chinese by default")
        run.get("/lang?to=en&back=%2F")
        run.check("Machines by state" in run.text(), "English on request")
        run.shot("11-overview-en")
        run.get("/lang?to=zh&back=%2F")

        # Contrast of the status colours against the page (WCAG AA: 4.5:1).
        for state in ["compliant", "failing", "error", "silent", "revoked"]:
            colour = run.js("const e = document.querySelector('a.card.s-' + arguments[0]); return getComputedStyle(e).color", state)
            ratio = contrast(rgb(colour), (255, 255, 255))
            run.check(ratio >= 4.5, f"status colour {state} {colour} has contrast {ratio:.1f}:1 on white")

        # A viewer reads but cannot approve.
        run.login(VIEWER)
        run.get("/enrolment")
        run.check(not d.find_elements(By.CSS_SELECTOR, "form[action='/enrolment/revoke']"), "the viewer is offered no revoke form")
        run.check(not d.find_elements(By.PARTIAL_LINK_TEXT, "批准"), "the viewer is offered no approve link")
        run.get("/enrolment/confirm?action=approve&sha=0")
        run.check("只读账户不能更改任何内容" in run.text(), "the viewer cannot open an approval")
        run.shot("12-viewer-refused")
        run.get("/waivers")
        token = run.js("const f = document.querySelector('input[name=csrf]'); return f ? f.value : ''")
        run.post_without_token("/enrolment/approve", {"csrf": token, "sha": "0", "note": "viewer"})
        run.check("只读账户不能更改任何内容" in run.text(), "a viewer's approval with a valid token is refused")

        # Logged out: redirected again.
        d.delete_all_cookies()
        run.get("/")
        run.check(run.path().startswith("/login"), "without a session the overview redirects to the login page")

        # The browser's console: no script ran, and nothing was loaded from elsewhere.
        logs = d.get_log("browser")
        bad = [entry for entry in logs if "alert" in entry["message"] or "http://" in entry["message"] and "127.0.0.1" not in entry["message"]]
        run.check(not bad, f"the browser console shows no script from a workstation ({bad})")
        with open(os.path.join(args.out, "browser-console.json"), "w") as f:
            json.dump(logs, f, ensure_ascii=False, indent=1)
    finally:
        d.quit()
    print(f"{run.passed} passed, {run.failed} failed")
    return 0 if run.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
