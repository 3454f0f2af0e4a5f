"""One API address syntax and one token file for every command, from flags
or the environment; bad input is refused naming the flag or the variable."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from okopy.cli import main
from okopy.controller.api import Api, ApiServer, serve
from okopy.controller.client import refusal_hint
from okopy.controller.endpoint import (
    EndpointError,
    Setting,
    choose,
    parse_address,
    parse_host_port,
    read_token,
)
from tests.unit.test_api import TOKEN, FakeBackend

API = Setting("", "--api")  # a template: the value is replaced per case


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:8081", "http://127.0.0.1:8081"),
        (":8081", "http://127.0.0.1:8081"),
        ("localhost:80", "http://localhost:80"),
        ("okopy_ctl:8080", "http://okopy_ctl:8080"),
        ("[::1]:8081", "http://[::1]:8081"),
        (" 10.0.0.1:9 ", "http://10.0.0.1:9"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://127.0.0.1:8081/", "http://127.0.0.1:8081"),
        ("http://ctl.example", "http://ctl.example:80"),
        ("https://ctl.example/okopy/", "https://ctl.example:443/okopy"),
        ("http://[::1]:8081", "http://[::1]:8081"),
    ],
)
def test_client_addresses(text: str, url: str) -> None:
    assert parse_address(Setting(text, "--api")).url == url


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("127.0.0.1", "no port"),
        ("127.0.0.1:x", "port 'x' is not a number"),
        ("127.0.0.1:0", "port '0' is not a number from 1 to 65535"),
        ("127.0.0.1:65536", "port '65536'"),
        ("::1:8080", "IPv6 address in brackets"),
        ("[nope]:8080", "is not a host name or address"),
        ("a b:80", "is not a host name or address"),
        ("127.0.0.1:8081/api", "port '8081/api'"),
        ("ftp://127.0.0.1:21", "the scheme must be http or https"),
        ("http://127.0.0.1:x", "Port could not be cast"),
        ("http://:8080", "no host"),
        ("http://u:p@127.0.0.1:8080", "a user, a query or a fragment is not taken"),
        ("http://127.0.0.1:8080/?a=1", "a user, a query or a fragment"),
        ("http://127.0.0.1:0", "port 0"),
        ("http://a$b:80", "'a$b' is not a host name"),
    ],
)
def test_bad_client_addresses_name_the_flag(text: str, why: str) -> None:
    with pytest.raises(EndpointError) as info:
        parse_address(Setting(text, "--api"))
    assert str(info.value).startswith(f"--api {text!r}: ")
    assert why in str(info.value)
    assert str(info.value).endswith(
        "give HOST:PORT (e.g. 127.0.0.1:8080), :PORT or http://HOST:PORT"
    )


def test_server_addresses() -> None:
    """The controller takes the same forms, but serves plain HTTP at /."""
    assert parse_address(Setting(":8080", "--api"), server=True).host == "127.0.0.1"
    assert parse_address(Setting("http://0.0.0.0:8080", "--api"), server=True).port == 8080
    for text, why in (("https://h:1", "must be http"), ("http://h:1/x", "not under a path")):
        with pytest.raises(EndpointError, match=why):
            parse_address(Setting(text, "OKOPY_API"), server=True)


def test_an_error_from_the_environment_names_the_variable() -> None:
    with pytest.raises(EndpointError, match=r"^OKOPY_API='nope': no port"):
        parse_address(Setting("nope", "OKOPY_API"))


def test_host_port_only() -> None:
    assert parse_host_port(Setting(":6653", "--listen"), "give HOST:PORT") == ("127.0.0.1", 6653)
    with pytest.raises(EndpointError, match=r"^--listen 'x': no port; give HOST:PORT$"):
        parse_host_port(Setting("x", "--listen"), "give HOST:PORT")


def test_flag_wins_over_variable_over_default() -> None:
    env = {"OKOPY_API": ":1"}
    assert choose(":2", "--api", env, "OKOPY_API", "d") == Setting(":2", "--api")
    assert choose(None, "--api", env, "OKOPY_API", "d") == Setting(":1", "OKOPY_API")
    assert choose(None, "--api", {"OKOPY_API": ""}, "OKOPY_API", "d") == Setting("d", "the default")
    assert choose(None, "--api", {}, "OKOPY_API") is None


def test_token_files(tmp_path: Path) -> None:
    good, empty, spaced = tmp_path / "good", tmp_path / "empty", tmp_path / "spaced"
    good.write_text(" t0ken\n")
    empty.write_text("\n")
    spaced.write_text("two words\n")
    assert read_token(Setting(str(good), "--api-token-file")) == "t0ken"
    cases = (
        (tmp_path / "missing", "No such file or directory"),
        (empty, "the file is empty"),
        (spaced, "one word"),
        (tmp_path, "Is a directory"),
    )
    for path, why in cases:
        with pytest.raises(EndpointError) as info:
            read_token(Setting(str(path), "OKOPY_API_TOKEN_FILE"))
        assert str(info.value).startswith(f"OKOPY_API_TOKEN_FILE={str(path)!r}: ")
        assert why in str(info.value)


def test_refusal_hints_name_the_flag_and_the_variable() -> None:
    for hint in (refusal_hint(401, None), refusal_hint(401, "--api-token-file 't'")):
        assert "--api-token-file FILE" in hint
        assert "OKOPY_API_TOKEN_FILE" in hint
    assert "from --api-token-file 't'" in refusal_hint(401, "--api-token-file 't'")
    assert refusal_hint(404, None) == ""


# The command line against a live API (127.0.0.1, a fake controller) ---------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    srv = serve(Api(FakeBackend(), TOKEN), "127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def port(server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.delenv("OKOPY_API", raising=False)
    monkeypatch.delenv("OKOPY_API_TOKEN_FILE", raising=False)
    return int(server.server_address[1])


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def okopy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "form", ["127.0.0.1:{}", ":{}", "http://127.0.0.1:{}", "http://127.0.0.1:{}/"]
)
def test_every_form_reaches_the_api(
    form: str, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = okopy(["switches", "--api", form.format(port), "--json"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out)[0]["name"] == "s1"


def test_the_environment_gives_address_and_token(
    port: int, token_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKOPY_API", f":{port}")
    code, out, _ = okopy(["prog", "list", "--dpid", "1", "--json"], capsys)
    assert code == 0
    assert json.loads(out)[0]["name"] == "limit"
    # Map contents need the token: from the variable, on every command.
    code, _, err = okopy(["map", "dump", "--dpid", "1", "2", "config"], capsys)
    assert code == 1
    assert "401" in err
    assert "--api-token-file FILE or set OKOPY_API_TOKEN_FILE" in err
    monkeypatch.setenv("OKOPY_API_TOKEN_FILE", str(token_file))
    code, out, _ = okopy(["map", "dump", "--dpid", "1", "2", "config"], capsys)
    assert code == 0
    assert json.loads(out) == [{"key": 0, "value": {"rate": 5}}]
    # A flag wins over its variable.
    code, _, err = okopy(["switches", "--api", "127.0.0.1:1"], capsys)
    assert code == 1
    assert "cannot reach the controller API at http://127.0.0.1:1 (from --api)" in err


def test_a_wrong_token_says_where_it_came_from(
    port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    argv = ["map", "set", "--api", f":{port}", "--api-token-file", str(wrong), "--dpid", "1",
            "2", "config", "0", "{}"]  # fmt: skip
    code, _, err = okopy(argv, capsys)
    assert code == 1
    assert f"the token from --api-token-file {str(wrong)!r} is not the controller's" in err


def test_the_old_token_flag_still_works(
    port: int, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["map", "get", "--api", f":{port}", "--token-file", str(token_file), "--dpid", "1",
            "2", "config", "0"]  # fmt: skip
    code, out, err = okopy(argv, capsys)
    assert code == 0
    assert json.loads(out)["value"] == {"rate": 5}
    assert "--token-file is deprecated: use --api-token-file" in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["switches", "--api", "127.0.0.1"], {}, "--api '127.0.0.1': no port"),
        (["switches"], {"OKOPY_API": "ftp://x"}, "OKOPY_API='ftp://x': the scheme must be"),
        (["prog", "list", "--dpid", "1", "--api-token-file", "/nonexistent/t"], {},
         "--api-token-file '/nonexistent/t': No such file or directory"),
        (["switches"], {"OKOPY_API_TOKEN_FILE": "/dev/null"},
         "OKOPY_API_TOKEN_FILE='/dev/null': the file is empty"),
        (["controller", "--policy", "p.yaml", "--api", "8080"], {}, "--api '8080': no port"),
        (["controller", "--policy", "p.yaml", "--api", "https://h:1"], {},
         "--api 'https://h:1': the scheme must be http"),
        (["controller", "--policy", "p.yaml"], {"OKOPY_API_TOKEN_FILE": "/nonexistent/t"},
         "OKOPY_API_TOKEN_FILE='/nonexistent/t': No such file"),
        (["controller", "--policy", "p.yaml", "--listen", "6653"], {}, "--listen '6653': no port"),
        (["controller", "--policy", "p.yaml", "--api", ":1", "--api-socket-fd", "3"], {},
         "give --api ':1' or --api-socket-fd, not both"),
        (["controller", "--policy", "p.yaml", "--api-socket-fd", "987"], {},
         "--api-socket-fd 987: Bad file descriptor"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_flag(
    argv: list[str],
    env: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OKOPY_API", raising=False)
    monkeypatch.delenv("OKOPY_API_TOKEN_FILE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = okopy(argv, capsys)
    assert code == 1
    assert err.startswith(f"okopy: error: {message}"), err


def test_the_controller_serves_on_an_inherited_socket() -> None:
    """What `okopy lab` hands the controller: a socket already listening."""
    listener = socket.create_server(("127.0.0.1", 0))
    srv = serve(Api(FakeBackend(), None), "127.0.0.1", 0, sock=listener)
    try:
        assert srv.socket is listener
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /api/v1/switches HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200"), answer[:100]
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_inherited_api_fd_must_be_a_socket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (tmp_path / "f").open("w") as f:
        fd = f.fileno()
        code, _, err = okopy(["controller", "--policy", "p.yaml", "--api-socket-fd", str(fd)],
                             capsys)  # fmt: skip
    assert code == 1
    assert err == f"okopy: error: --api-socket-fd {fd}: not a socket\n"


def test_policy_diff_and_reload(
    port: int, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`okopy policy diff` shows each switch's changes (and, with
    --exit-code, exits 1 when there are some); `policy reload` applies."""
    api = ["--api", f":{port}"]
    code, out, err = okopy(["policy", "diff", *api], capsys)
    assert code == 1
    assert "--api-token-file" in err  # the diff shows map entries: token needed
    code, out, err = okopy(["policy", "diff", *api, "--api-token-file", str(token_file)], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "switch s1 (dpid 0x1): 1 write map entry",
        '  write map entry: program 2 map config key 0 value {"rate": 6}',
    ]
    code, out, err = okopy(["policy", "diff", *api, "--api-token-file", str(token_file),
                            "--exit-code", "--json"], capsys)  # fmt: skip
    assert code == 1
    assert json.loads(out)["switches"][0]["changes"][0]["key"] == 0
    code, out, err = okopy(["policy", "reload", *api, "--api-token-file", str(token_file)],
                           capsys)  # fmt: skip
    assert (code, err) == (0, "")
