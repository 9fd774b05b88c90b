import subprocess

import pytest

from kapacitor.capture.gitinfo import github_repository, resolve_context


@pytest.mark.parametrize(
    "url,repo",
    [
        ("git@github.com:acme/widgets.git", "acme/widgets"),
        ("https://github.com/acme/api-server.git", "acme/api-server"),
        ("https://github.com/acme/api-server", "acme/api-server"),
        ("ssh://git@github.com/acme/x.y", "acme/x.y"),
        ("https://gitlab.com/acme/widgets.git", None),
        ("", None),
    ],
)
def test_github_repository(url, repo):
    assert github_repository(url) == repo


def test_resolve_context_reads_a_real_repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "remote",
            "add",
            "origin",
            "https://tok:secretpass@github.com/acme/widgets.git",
        ],
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(tmp_path), "config", "user.email", "dev@acme.test"], check=True
    )
    context = resolve_context(str(tmp_path))
    assert context["repository"] == "acme/widgets"
    assert context["user"] == "dev@acme.test"
    assert "secretpass" not in context["remote_url"]


def test_a_vanished_directory_has_no_repository(tmp_path):
    context = resolve_context(str(tmp_path / "gone"))
    assert "repository" not in context and "user" in context
