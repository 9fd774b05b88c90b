"""Who may read what: users, their API tokens, sessions' owners and visibility
(``accounts``), and the rules that decide what a viewer sees (``viewer``)."""
