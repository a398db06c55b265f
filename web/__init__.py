"""The web app (SPEC §8): the archive's gallery and batch pages, the in-browser chat, and the
moderator's export, delete and queue, on aiohttp's web server in the bots' event loop."""
