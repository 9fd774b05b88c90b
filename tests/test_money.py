"""The one rule for how a cost reads (pages and CLI)."""

from kapacitor.money import usd


def test_a_cost_reads_the_same_way_everywhere():
    assert [usd(a) for a in (None, 0, 0.0004, 0.001, 0.039, 0.0999, 0.1, 0.18, 1234.5)] == [
        "—", "$0.00", "<$0.001", "$0.001", "$0.039", "$0.10", "$0.10", "$0.18", "$1,234.50"]
