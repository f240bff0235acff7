"""The HTML report fits a 1,300 px browser window (rendered in headless Chromium).

Before: the claims table under the capacity table inherited its ``white-space: nowrap``, so each
reason stayed on one line and the page was 3,418 px wide in a 1,300 px window.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rigkit.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
#: the reference build: its spec holds performance claims, so the report has the claims table
SPEC = ROOT / "examples" / "reference-4x4090.yaml"
WINDOW_PX = 1300

#: writes the page's width (and the window's) into the DOM, where --dump-dom shows it
_PROBE = (
    "<script>document.body.setAttribute('data-width', "
    "document.documentElement.scrollWidth + ' ' + window.innerWidth);</script></body>"
)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: chromium)")
@pytest.mark.timeout(120)
def test_report_is_no_wider_than_the_window(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["plan", str(SPEC), "--out", str(out)])
    assert r.exit_code in (0, 1), r.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h3>Performance claims</h3>" in html  # the table that made the page wide is there
    probe = out / "probe.html"  # beside report.html: the figures load as they do for a reader
    probe.write_text(html.replace("</body>", _PROBE), encoding="utf-8")
    exe = _chromium()
    assert exe is not None
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WINDOW_PX},2000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    found = re.search(r'data-width="(\d+) (\d+)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    page, window = int(found[1]), int(found[2])
    assert window == WINDOW_PX
    assert page <= window, f"the report is {page} px wide in a {window} px window"
