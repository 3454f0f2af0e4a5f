"""Where the controller's HTTP API is, and the token that opens it.

One address syntax and one token file for every command, the controller's
and its clients': `--api` / `$OKOPY_API` and `--api-token-file` /
`$OKOPY_API_TOKEN_FILE`, a flag winning over its variable.  An address is
HOST:PORT, :PORT (127.0.0.1) or, for clients, a URL (`http://HOST:PORT`,
`https://...`, with a path when a proxy serves the API under one).

Everything here is pure but `read_token()`; every error names the flag or
the variable that the bad value came from.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

API_FLAG = "--api"
API_ENV = "OKOPY_API"
TOKEN_FLAG = "--api-token-file"
TOKEN_ENV = "OKOPY_API_TOKEN_FILE"
DEFAULT_API = "127.0.0.1:8080"
FORMS = "give HOST:PORT (e.g. 127.0.0.1:8080), :PORT or http://HOST:PORT"
# Names as resolvers take them, underscores too (container service names).
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?\Z")


class EndpointError(ValueError):
    """An API address or token file that cannot be used; says which and why."""


@dataclass(frozen=True)
class Setting:
    """A value and where it came from (a flag or a variable), for messages."""

    value: str
    source: str

    def __str__(self) -> str:
        """As the user gave it: `--api '1.2.3.4:80'`, `OKOPY_API='1.2.3.4:80'`."""
        sep = "=" if self.source.isupper() else " "
        return f"{self.source}{sep}{self.value!r}"


def choose(
    flag_value: str | None,
    flag: str,
    environ: Mapping[str, str],
    variable: str,
    default: str | None = None,
) -> Setting | None:
    """The flag's value if given, else the variable's if set and not empty,
    else 'default' (None: nothing)."""
    if flag_value is not None:
        return Setting(flag_value, flag)
    if environ.get(variable):
        return Setting(environ[variable], variable)
    return Setting(default, "the default") if default is not None else None


@dataclass(frozen=True)
class ApiAddress:
    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def url(self) -> str:
        """The base URL that the API's paths (/api/v1/...) are added to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def _host(host: str) -> str | None:
    """'host' without IPv6 brackets, or None if it is not a host."""
    if host.startswith("[") and host.endswith("]"):
        return _plain_host(host[1:-1]) if ":" in host else None
    return _plain_host(host) if ":" not in host else None


def _plain_host(host: str) -> str | None:
    """A name, an IPv4 or an IPv6 address (no brackets); None if not one."""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    return host if _HOST_NAME.match(host) else None


def _port(text: str) -> int | None:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return None
    return int(text)


def parse_address(setting: Setting, *, server: bool = False) -> ApiAddress:
    """The address in 'setting'; a server (the controller) takes no https
    and no path.  Raises EndpointError naming the setting."""
    text = setting.value.strip()

    def bad(why: str) -> EndpointError:
        return EndpointError(f"{setting}: {why}; {FORMS}")

    if not text:
        raise bad("empty")
    if "://" in text:
        return _parse_url(text, server, bad)
    host, port = parse_host_port(setting, FORMS)
    return ApiAddress("http", host, port)


def parse_host_port(setting: Setting, forms: str) -> tuple[str, int]:
    """HOST:PORT or :PORT (127.0.0.1) -> (host without brackets, port);
    raises EndpointError naming the setting and ending with 'forms'."""
    text = setting.value.strip()

    def bad(why: str) -> EndpointError:
        return EndpointError(f"{setting}: {why}; {forms}")

    if not text:
        raise bad("empty")
    host, colon, port_text = text.rpartition(":")
    if not colon:
        raise bad("no port")
    host = host or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        raise bad("put an IPv6 address in brackets, as [::1]:8080")
    plain = _host(host)
    if plain is None:
        raise bad(f"{host!r} is not a host name or address")
    port = _port(port_text)
    if port is None:
        raise bad(f"port {port_text!r} is not a number from 1 to 65535")
    return plain, port


def _parse_url(text: str, server: bool, bad: Callable[[str], EndpointError]) -> ApiAddress:
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as e:
        raise bad(str(e)) from None
    schemes = ("http",) if server else ("http", "https")
    if url.scheme not in schemes:
        raise bad(f"the scheme must be {' or '.join(schemes)}")
    if url.username is not None or url.password is not None or url.query or url.fragment:
        raise bad("a user, a query or a fragment is not taken")
    if not url.hostname:
        raise bad("no host")
    host = _plain_host(url.hostname)
    if host is None:
        raise bad(f"{url.hostname!r} is not a host name or address")
    if port == 0:
        raise bad("port 0: give a port from 1 to 65535")
    path = url.path.rstrip("/")
    if server and path:
        raise bad("the controller serves the API at /, not under a path")
    if port is None:
        port = 443 if url.scheme == "https" else 80
    return ApiAddress(url.scheme, host, port, path)


def read_token(setting: Setting) -> str:
    """The bearer token in the file that 'setting' names."""
    try:
        token = Path(setting.value).read_text().strip()
    except OSError as e:
        raise EndpointError(f"{setting}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise EndpointError(f"{setting}: not a text file") from None
    if not token:
        raise EndpointError(f"{setting}: the file is empty; put the bearer token in it")
    if any(c.isspace() for c in token):
        raise EndpointError(f"{setting}: the token must be one word, without spaces")
    return token
