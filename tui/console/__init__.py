"""The Textual console: the app, its screens and widgets. Renders state, posts intents."""
