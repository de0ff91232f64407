"""The app's parts: its three tabs (`text_prompts`, `object_clicks`, `video`), its documented API endpoints (`api`)
and what they share (`config`, `state`, `parsing`, `errors`, `rendering`, `page`). `app.py` assembles the page.

The modules import one another relatively and nothing of `litetext_gradio`, so this package also runs as the
top-level `tabs` next to a Space's `app.py`.
"""
