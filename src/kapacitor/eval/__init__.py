"""Session evaluation: an LLM judge answers the catalog's questions about a
session, with cited evidence; the verdicts, a retrospective and the judges'
cost are stored as a ``SessionEvalCompleted`` event (see docs/eval.md)."""
