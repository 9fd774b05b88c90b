"""The web dashboard: server, pages and the renderers they use."""
