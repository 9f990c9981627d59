"""Tools for instructors and maintainers (not part of the ``helpers`` package learners import).

- ``python -m tools.export_html``: every lesson executed afresh and written as self-contained,
  offline HTML to ``build/html/``.
"""
