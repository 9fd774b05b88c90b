"""People working together on the record: comments on sessions (and their chat
items and trace nodes) and marks for the sessions worth learning from. Both are
events on streams of their own (``events.session_comments_stream``,
``events.session_marks_stream``), folded by the ``comments`` and ``marks`` read
models; nothing is edited in place."""
