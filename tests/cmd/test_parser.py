"""The console scripts' shared parser: a mistyped subcommand or choice names the closest one."""

from __future__ import annotations

import pytest

from myservice.cmd import ArgumentParser, manage, plugins


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["tokn", "list"],
            "invalid choice: 'tokn'; did you mean 'token'? (choose from 'db', 'token')",
        ),
        (["db", "upgrad"], "invalid choice: 'upgrad'; did you mean 'upgrade'?"),
        (["token", "creat"], "invalid choice: 'creat'; did you mean 'create'?"),
    ],
)
def test_manage_names_the_closest_subcommand(capsys, argv, expected):
    with pytest.raises(SystemExit) as info:
        manage.main(argv)
    assert info.value.code == 2
    assert expected in capsys.readouterr().err


def test_plugins_names_the_closest_command(capsys):
    with pytest.raises(SystemExit) as info:
        plugins.build_parser().parse_args(["lst"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'lst'; did you mean 'list'?" in err
    assert err.count("\n") == 1  # still one line


def test_nothing_close_lists_the_choices_only(capsys):
    parser = ArgumentParser(prog="p")
    parser.add_argument("--color", choices=["red", "green"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--color", "blue"])
    err = capsys.readouterr().err
    assert "invalid choice: 'blue' (choose from 'red', 'green')" in err
    assert parser.parse_args(["--color", "red"]).color == "red"


def test_an_unknown_option_names_the_closest_one(capsys):
    from myservice.cmd import api

    with pytest.raises(SystemExit) as info:
        api.build_parser().parse_args(["etc/api-paste.ini", "--prot", "9000"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --prot 9000; did you mean '--port'?" in err


def test_options_of_subcommands_count_too(capsys):
    with pytest.raises(SystemExit):
        plugins.build_parser().parse_args(["list", "--jsn"])
    assert "unrecognized arguments: --jsn; did you mean '--json'?" in capsys.readouterr().err


def test_an_unknown_positional_gets_no_hint(capsys):
    parser = ArgumentParser(prog="p")
    parser.add_argument("--port")
    with pytest.raises(SystemExit):
        parser.parse_args(["extra"])
    assert capsys.readouterr().err.endswith("error: unrecognized arguments: extra\n")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["token", "create", "--usr-id", "u", "--project-id", "p", "--role", "r"],
            "error: unrecognized arguments: --usr-id; did you mean '--user-id'? Also, the "
            "following arguments are required: --user-id\n",
        ),
        (
            ["token", "create", "--user-id", "u", "--projct-id=p"],
            "error: unrecognized arguments: --projct-id=p; did you mean '--project-id'? Also, "
            "the following arguments are required: --project-id, --role\n",
        ),
    ],
)
def test_a_mistyped_option_is_named_before_the_missing_ones(capsys, argv, expected):
    with pytest.raises(SystemExit) as info:
        manage.main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(expected)


def test_a_missing_subcommand_with_an_unknown_option_names_both(capsys):
    with pytest.raises(SystemExit) as info:
        plugins.build_parser().parse_args(["--jsn"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --jsn; did you mean '--json'? Also, the following " in err
    assert err.count("\n") == 1


def test_missing_arguments_alone_keep_argparse_message(capsys):
    parser = ArgumentParser(prog="p")
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--verbose", "-v", action="count")
    parser.add_argument("--offset", type=int)
    # an abbreviation, a short flag bundle and a negative number are not unknown options
    for argv in (["--verb"], ["-vv"], ["--offset", "-3"], ["--offset=-3"], ["--", "--zzz"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert err.endswith("error: the following arguments are required: --user-id\n"), argv


def test_an_unknown_option_without_a_close_one_is_still_named(capsys):
    parser = ArgumentParser(prog="p")
    parser.add_argument("--user-id", required=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--zzz"])
    assert capsys.readouterr().err.endswith(
        "error: unrecognized arguments: --zzz. Also, the following arguments are required: "
        "--user-id\n"
    )


def test_a_mistyped_option_whose_value_is_taken_for_a_subcommand_is_named(capsys):
    with pytest.raises(SystemExit) as info:
        manage.main(["--confg-file", "etc/myservice.conf", "token", "list"])
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(
        "error: unrecognized arguments: --confg-file; did you mean '--config-file'? Also, "
        "argument COMMAND: invalid choice: 'etc/myservice.conf' (choose from 'db', 'token')\n"
    )


def test_options_of_a_subcommand_not_parsed_yet_are_not_unknown(capsys):
    with pytest.raises(SystemExit):
        manage.main(["tokn", "create", "--user-id", "u"])
    assert capsys.readouterr().err.endswith(
        "error: argument COMMAND: invalid choice: 'tokn'; did you mean 'token'? (choose from "
        "'db', 'token')\n"
    )


def test_help_shows_docstring_literals_plainly():
    text = manage.build_parser().format_help()
    assert "``" not in text
    assert "'myservice-manage': operator commands ('db upgrade'" in " ".join(text.split())
