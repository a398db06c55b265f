"""imagebot: art on demand for chat communities (the CLI, the chat bots, the web app).

The folders beside this file are its subpackages: bot (the running process), commands (what
users can ask for), providers (prompt sources and image renderers), storage (the archive).
"""
