import pytest

from rag import cli


@pytest.mark.parametrize("argv,rest", [
    (["serve", "--port", "8000", "--host", "127.0.0.1"], ["--port", "8000", "--host", "127.0.0.1"]),
    (["--home", "/tmp/x", "train", "ner", "--epochs=1"], ["ner", "--epochs=1"]),
    (["eval", "retrieval", "--limit", "5", "--json"], ["retrieval", "--limit", "5", "--json"]),
])
def test_delegated_commands_get_their_options(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                              rest: list[str]) -> None:
    seen = []
    monkeypatch.setattr(cli, "cmd_delegate", lambda a: seen.append(a.rest) or 0)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _rebind(parser(), cli.cmd_delegate))
    assert cli.main(argv) == 0
    assert seen == [rest]


def _rebind(p, fn):
    for action in p._subparsers._group_actions[0].choices.values():
        if action.get_default("fn") is not None and action.get_default("fn").__name__ == "cmd_delegate":
            action.set_defaults(fn=fn)
    return p


def test_unknown_option_of_a_normal_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["list", "--bogus"])
    assert e.value.code == 2
