"""The trace tree against the real samples: structure, tokens against truth.json,
durations, errors, and its HTML."""

from __future__ import annotations

import json

import pytest
from render_fixtures import EDGE, Transcript, edge_store, imported_store, sample_store
from test_import_samples import truth

from kapacitor.projections.session_summary import TOKEN_FIELDS, SessionSummaries
from kapacitor.server.trace import TraceNode, render_trace, trace_tree

SUBAGENT_SESSION = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
TODO_SESSION = "922a15d3-3e4d-471a-9a7e-754f15615295"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    yield from sample_store(tmp_path_factory)


def walk(node: TraceNode):
    yield node
    for child in node.children:
        yield from walk(child)


def own_tokens(node: TraceNode) -> dict[str, int]:
    """A node's tokens less its children's: what its own API calls used."""
    return {k: v - sum(c.tokens.get(k, 0) for c in node.children) for k, v in node.tokens.items()}


@pytest.mark.parametrize("session_id", sorted(truth()))
def test_tokens_add_up_to_truth(samples, session_id):
    tree = trace_tree(samples, session_id)
    (expected,) = truth()[session_id].values()  # one model per sample session
    assert tree.tokens == {k: expected[k] for k in (*TOKEN_FIELDS, "requests")}
    # only turns use tokens of their own, and they add up to the session's totals
    nodes = list(walk(tree))
    assert all(not any(own_tokens(n).values()) for n in nodes if n.kind != "turn")
    for name in (*TOKEN_FIELDS, "requests"):
        assert sum(own_tokens(n)[name] for n in nodes if n.kind == "turn") == expected[name]


def test_tool_calls_in_order_with_results_and_errors(samples):
    tree = trace_tree(samples, SUBAGENT_SESSION)
    prompt = tree.children[0]
    assert (prompt.kind, prompt.label) == ("prompt", "create hello.py and run it")
    assert [n.kind for n in prompt.children] == ["turn"] * 8
    calls = [(n.kind, n.label, n.error) for turn in prompt.children for n in turn.children]
    assert calls == [
        ("todo", "TaskCreate Create hello.py", False),
        ("todo", "TaskCreate Run hello.py", False),
        ("tool", "Write /home/dev/src/widgets/hello.py", False),
        ("tool", "Bash ls && python3 hello.py", False),
        ("tool", "Read /home/dev/src/widgets/hello.py", False),
        ("tool", "Agent Review hello.py", False),
        ("tool", "Bash cat does_not_exist.txt", True),
        ("todo", "TaskUpdate #1 Create hello.py → completed", False),
        ("todo", "TaskUpdate #2 Run hello.py → completed", False),
    ]
    failing = prompt.children[5].children[0]
    assert (
        failing.detail["output"]
        == "Exit code 1\ncat: does_not_exist.txt: No such file or directory"
    )
    assert failing.duration_ms == pytest.approx(124.0)
    assert (tree.errors, prompt.errors, prompt.children[5].errors, prompt.children[0].errors) == (
        1,
        1,
        1,
        0,
    )
    assert tree.children[1].label == "/compact"  # and the compaction it caused under it, not under the prompt before
    assert [n.kind for n in tree.children[1].children] == ["compaction"]


def test_turns_group_blocks_of_one_api_message(samples):
    turn = trace_tree(samples, SUBAGENT_SESSION).children[0].children[0]
    assert turn.id == "msg_fake_c1344aefcb504fe69747" and turn.model == "claude-opus-4-8"
    assert turn.detail == {
        "thinking": "The user wants hello.py created and run. I'll plan with tasks.",
        "text": "I'll plan this out first.",
    }
    assert turn.tokens["requests"] == 1 and len(turn.children) == 2


def test_subagent_is_a_subtree_of_its_agent_call(samples):
    tree = trace_tree(samples, SUBAGENT_SESSION)
    agent = next(n for n in walk(tree) if n.id == "toolu_6f53674e7b3340709c2abc90")
    (sub,) = agent.children
    assert (sub.kind, sub.id, sub.label) == (
        "subagent",
        "aaa13d7d127c8c4a2",
        "general-purpose: Review hello.py",
    )
    inner = [n.label for n in walk(sub) if n.kind == "tool"]
    assert inner == ["Read /home/dev/src/widgets/hello.py", "Bash wc -l hello.py"]
    assert sub.tokens["requests"] == 3 and agent.tokens == sub.tokens
    assert sub.started == "2026-11-25T20:58:21.500Z" and sub.duration_ms == pytest.approx(446.0)


def test_todo_write_nodes(samples):
    todos = [n for n in walk(trace_tree(samples, TODO_SESSION)) if n.kind == "todo"]
    assert [n.label for n in todos] == ["TodoWrite 0/2 done", "TodoWrite 2/2 done"]
    assert todos[0].detail["input"]["todos"][0] == {
        "content": "Create hello.py",
        "status": "in_progress",
        "activeForm": "Creating hello.py",
    }


def test_json_twin(samples):
    data = json.loads(json.dumps(trace_tree(samples, SUBAGENT_SESSION).as_json()))
    assert data["kind"] == "session" and data["tokens"]["requests"] == 11
    assert data["children"][0]["children"][5]["children"][0]["error"] is True


def test_html_tree_with_details_and_marked_errors(samples):
    html = render_trace(trace_tree(samples, SUBAGENT_SESSION))
    assert html.startswith('<div class="trace" data-trace>')
    assert html.count('<template class="tdetail">') == html.count('class="tnode ')
    assert (
        'class="tnode kind-tool error"' in html and 'class="tnode kind-session has-error"' in html
    )
    order = [
        html.index(s)
        for s in (
            "TaskCreate Create hello.py",
            "Bash ls &amp;&amp; python3 hello.py",
            "Bash wc -l hello.py",
            "Bash cat does_not_exist.txt",
        )
    ]
    assert order == sorted(order)
    assert "No such file or directory" in html  # the output, in the node's details


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    yield from edge_store(tmp_path_factory)


def test_nested_subagents_and_their_tokens(edge):
    tree = trace_tree(edge, EDGE)
    summaries = SessionSummaries()
    for event in edge.read_all():
        summaries.apply(event)
    (expected,) = summaries.sessions[EDGE].tokens().values()
    assert tree.tokens == expected and expected["requests"] == 8
    subagents = [n for n in walk(tree) if n.kind == "subagent"]
    assert [n.id for n in subagents] == [
        "a1111111111111111",
        "a2222222222222222",
        "a3333333333333333",
    ]
    assert subagents[1] in list(walk(subagents[0]))  # nested inside the first
    assert [n.label for n in walk(subagents[1]) if n.kind == "tool"] == ["Bash ls deep"]
    assert [(n.kind, n.error) for n in tree.children[0].children if n.kind not in ("turn", "tool")] == [
        ("tool_result", False), ("api_error", True), ("interrupt", False),
    ]  # fmt: skip
    assert tree.errors == 1


def test_turns_group_under_the_todo_in_progress(samples):
    prompt = trace_tree(samples, TODO_SESSION).children[0]
    assert [(n.kind, n.label) for n in prompt.children] == [
        ("turn", "I'll plan this out first."),  # the TodoWrite that starts "Create hello.py"
        ("task", "Create hello.py"),
        (
            "turn",
            "Created hello.py and ran it successfully; it prints 'hello from fake claude'. The reviewer found no issues.",
        ),
    ]
    task = prompt.children[1]
    assert task.id == "toolu_7e0bde3fa3e64dbeaa9b7af6" and len(task.children) == 6
    assert [n.label for n in walk(task) if n.kind in ("tool", "todo")][-1] == "TodoWrite 2/2 done"
    assert task.errors == 2 and task.tokens["requests"] == 9


def test_turns_group_under_the_task_in_progress(tmp_path_factory):
    t = Transcript("0000ta5c-0000-4000-8000-000000000001")
    t.user("do it")
    t.tool(
        "TaskCreate",
        {"subject": "Build"},
        "Task #1 created",
        structured={"task": {"id": "1", "subject": "Build"}},
    )
    t.tool("TaskUpdate", {"taskId": "1", "status": "in_progress"}, "ok")
    t.tool("Bash", {"command": "make"}, "built")
    t.tool("TaskUpdate", {"taskId": "1", "status": "completed"}, "ok")
    t.text("done")
    store = imported_store(tmp_path_factory, [t.write(tmp_path_factory.mktemp("transcripts"))])
    try:
        prompt = trace_tree(store, t.session_id).children[0]
    finally:
        store.close()
    assert [(n.kind, n.label) for n in prompt.children] == [
        ("turn", "TaskCreate"),
        ("turn", "TaskUpdate"),
        ("task", "#1 Build"),
        ("turn", "done"),
    ]
    assert [n.label for n in walk(prompt.children[2]) if n.kind != "turn"] == [
        "#1 Build",
        "Bash make",
        "TaskUpdate #1 Build → completed",
    ]


def test_a_large_trace_leaves_details_to_be_fetched(tmp_path_factory):
    from kapacitor.server.render.tree import INLINE_NODES
    from kapacitor.server.trace import render_node_detail

    big = Transcript("0000a11c-0000-4000-8000-00000000b16e")
    big.user("many calls")
    for n in range(INLINE_NODES // 2 + 1):  # a turn and a tool node per call
        big.tool("Bash", {"command": f"echo {n}"}, f"out {n}")
    root = tmp_path_factory.mktemp("big")
    big.write(root)
    store = imported_store(tmp_path_factory, [root])
    tree = trace_tree(store, "0000a11c-0000-4000-8000-00000000b16e")
    html = render_trace(tree, detail_url="/sessions/x/trace/detail")
    assert 'data-detail-url="/sessions/x/trace/detail"' in html and "<template" not in html
    tool = next(n for n in tree.children[0].children[7].children if n.kind == "tool")
    detail = render_node_detail(tree, tool.id)
    assert detail is not None and "echo 7" in detail and "out 7" in detail
    assert render_node_detail(tree, "no-such-node") is None
    store.close()


def test_a_small_trace_keeps_its_details_in_the_page(samples):
    html = render_trace(trace_tree(samples, SUBAGENT_SESSION), detail_url="/sessions/x/trace/detail")
    assert "data-detail-url" not in html and html.count('<template class="tdetail">') == html.count('class="tnode ')


def test_a_large_trace_renders_a_bounded_tree_and_the_rest_on_demand(tmp_path_factory, monkeypatch):
    """With room for 50 nodes a page, the page holds 50 and a loader; following
    the loaders renders every node exactly once."""
    import re

    from kapacitor.server.render import tree as tree_html
    from kapacitor.server.trace import render_trace_children

    monkeypatch.setattr(tree_html, "TREE_NODES", 50)
    sid = "0000a11c-0000-4000-8000-00000000b17e"
    big = Transcript(sid)
    big.user("many calls")
    for n in range(tree_html.INLINE_NODES // 2 + 1):
        big.tool("Bash", {"command": f"echo {n}"}, f"out {n}")
    root = tmp_path_factory.mktemp("bigger")
    big.write(root)
    store = imported_store(tmp_path_factory, [root])
    tree = trace_tree(store, sid)
    url = f"/sessions/{sid}/trace/children"
    html = str(render_trace(tree, detail_url="/d", children_url=url))
    assert html.count('class="tnode ') == 50
    loaders = re.findall(r'hx-get="([^"]+)"', html)
    rendered = re.findall(r'data-id="([^"]*)"', html)
    fetches = 0
    while loaders:
        path, skip = re.match(r".*\?path=([0-9.]*)&amp;skip=(\d+)$", loaders.pop()).groups()
        rows = str(render_trace_children(tree, path, int(skip), url))
        assert rows.count('class="tnode ') <= 50
        rendered += re.findall(r'data-id="([^"]*)"', rows)
        loaders += re.findall(r'hx-get="([^"]+)"', rows)
        fetches += 1
    everything = []
    stack = [tree]
    while stack:
        node = stack.pop()
        everything.append(node.id)
        stack.extend(node.children)
    assert sorted(rendered) == sorted(everything) and fetches >= len(everything) // 50
    assert render_trace_children(tree, "9999", 0, url) is None and render_trace_children(tree, "x", 0, url) is None
    store.close()


def test_node_details_name_token_counts_as_every_page_does(samples):
    """"cache write", not the API's "cache creation input tokens": each count under
    its label from ``server/terms.py``, the meaning in its tooltip."""
    from kapacitor.server.terms import TERMS, TOKEN_TERMS, label
    from kapacitor.server.trace import render_node_detail

    tree = trace_tree(samples, SUBAGENT_SESSION)
    detail = str(render_node_detail(tree, tree.id))
    facts = detail.split('<table class="tfacts">', 1)[1].split("</table>", 1)[0]
    assert "input tokens" not in facts and "ephemeral" not in facts
    shown = [name for name in TOKEN_TERMS if tree.tokens.get(name)]
    assert "ephemeral_5m_input_tokens" in shown or "ephemeral_1h_input_tokens" in shown
    for name in shown:
        term = TOKEN_TERMS[name]
        assert f'<span class="term" title="{TERMS[term]}">{label(term)}</span></th><td>{tree.tokens[name]:,}</td>' in facts
    assert [label(t) for t in ("in", "out", "cache_read", "cache_write")] == ["in", "out", "cache read", "cache write"]
