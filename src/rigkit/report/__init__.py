"""Renderers for plan results: rich terminal (:mod:`.text`), JSON and the report directory
(:mod:`.render`), Markdown (:mod:`.markdown`), figures (:mod:`.figures`).

Renderers read a :class:`~rigkit.design.plan.PlanResult`; they compute nothing of their own.
Nothing is imported here, so that `rigkit plan --format json` does not load rich or matplotlib.
"""
