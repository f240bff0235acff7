"""The Jinja environment of the report templates (``templates/``), HTML-escaping by default.

jinja2 is imported on first use: `rigkit plan --format json` never renders a template.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("rigkit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
