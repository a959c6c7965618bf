"""The one Markdown table (jaxtrainer/tables.py) that every report writes."""

from jaxtrainer.tables import markdown_table


def test_a_table_is_a_header_a_rule_and_a_line_per_row():
    table = markdown_table(("model", "s/epoch"), [("mlp", "0.15"), ("cnn", 2)])
    assert table.splitlines() == ["| model | s/epoch |", "|---|---|", "| mlp | 0.15 |", "| cnn | 2 |"]


def test_every_line_has_as_many_cells_as_the_header():
    header, rows = ("a", "b", "c"), [(1, 2, 3), ("x", "", "z")]
    for line in markdown_table(header, rows).splitlines():
        assert line.startswith("|") and line.endswith("|")
        assert line.count("|") == len(header) + 1


def test_a_cell_from_elsewhere_cannot_break_the_table():
    table = markdown_table(("test", "message"), [("t1", "a | b\n  second line")])
    assert table.splitlines()[2] == "| t1 | a \\| b second line |"


def test_no_rows_leaves_the_header():
    assert markdown_table(("x",), []) == "| x |\n|---|"
