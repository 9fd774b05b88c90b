"""HTML renderers for transcript content, one module per kind of block.

Everything that comes from a transcript is untrusted. Our own markup is built
with ``markupsafe`` (every interpolated value escaped); HTML produced by a
library from untrusted text (markdown, highlighted code) goes through
``sanitize.clean``, the one place HTML is cleaned.
"""
