"""SSRF-safe fetching of a URL for ingestion.

Three layers, each usable on its own:

* :func:`check_url` validates a URL's syntax: http or https only, a host, no
  credentials, a sane length and port. An IP-literal host (including the
  integer, octal and hex forms such as ``http://2130706433/``) is refused
  there already when private addresses are not allowed. No DNS.
* :func:`resolve_public_addresses` resolves a host with ``socket.getaddrinfo``
  and refuses it when *any* address is not globally routable (loopback,
  private, link-local and the cloud metadata address ``169.254.169.254``,
  shared ``100.64.0.0/10``, multicast, reserved, unspecified, IPv6 ULA and
  site-local, and IPv4-mapped / NAT64 / 6to4 forms that embed one of those).
* :func:`fetch_url` fetches with httpx, following redirects by hand and running
  both checks again on every hop.

DNS rebinding: every request connects to an address that was checked. The
request URL's host is replaced by that IP; the ``Host`` header carries the
original name and, for https, the TLS SNI name and certificate check use it
too (httpcore's ``sni_hostname`` extension), so virtual hosting and
certificate verification work as with a normal request. Proxies from the
environment are ignored (``trust_env=False``) because they would connect on
our behalf to an address we never checked. Each hop uses its own client, so a
connection made for one host is never reused for another.

Residual limits: ``getaddrinfo`` itself has no timeout of ours (the system
resolver's applies), so a very slow resolver can overrun ``timeout_s``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

import httpx

from ragd.errors import FetchError, PayloadTooLarge, TransientError, UnsafeURL

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchedResource",
    "Validators",
    "check_url",
    "fetch_url",
    "resolve_public_addresses",
]

DEFAULT_USER_AGENT: Final = "ragd/0.1 (+https://github.com/ragd)"

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# An ASCII hostname (IDNA names arrive here already as xn-- labels).
_HOSTNAME_RE: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_.])?")
# Candidates for the legacy inet_aton forms: 2130706433, 0x7f.1, 017700000001.
_LEGACY_IPV4_RE: Final = re.compile(r"[0-9a-fx.]+")
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE: Final = ipaddress.IPv6Network("64:ff9b:1::/48")


@dataclass(frozen=True)
class FetchedResource:
    """A fetched body.

    ``url`` is the final URL after redirects; ``content_type`` the media type of
    the ``Content-Type`` header, lowercased and without parameters (``text/html``),
    or None when absent; ``filename`` the percent-decoded last path segment of
    ``url``, or None when the path ends in ``/``. ``etag`` and ``last_modified`` are
    the response's validators, for a later conditional request; ``not_modified`` is true
    when the server answered 304 to one (the body is then empty).
    """

    url: str
    content: bytes
    content_type: str | None
    filename: str | None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


@dataclass(frozen=True)
class Validators:
    """What a conditional GET sends: the ``ETag`` and ``Last-Modified`` of the copy we
    hold. Values that could smuggle a header (control characters, over 500 characters)
    are not sent."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        found = {}
        if _header_safe(self.etag):
            found["If-None-Match"] = str(self.etag)
        if _header_safe(self.last_modified):
            found["If-Modified-Since"] = str(self.last_modified)
        return found


def _header_safe(value: str | None) -> bool:
    return value is not None and 0 < len(value) <= 500 and value.isprintable()


# --------------------------------------------------------------------------- checks


def check_url(
    url: str,
    *,
    allow_private: bool,
    max_length: int = 2000,
    allow_networks: Iterable[str] = (),
) -> str:
    """Validate ``url`` for fetching and return it (surrounding whitespace removed).

    Only http and https, a host, no userinfo, at most ``max_length`` characters,
    a port (if given) in 1-65535. Purely syntactic: no DNS. When
    ``allow_private`` is false an IP-literal host that is not public is refused
    here already unless it lies in one of ``allow_networks`` (CIDR strings).

    Raises:
        UnsafeURL: the URL is refused; ``detail`` never repeats credentials.
    """
    candidate = url.strip()
    if not candidate:
        raise UnsafeURL("URL is empty")
    if len(candidate) > max_length:
        raise UnsafeURL(f"URL is longer than {max_length} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate):
        raise UnsafeURL("URL must not contain whitespace or control characters")
    try:
        parsed = httpx.URL(candidate)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise UnsafeURL("URL is malformed") from None

    scheme = parsed.scheme.lower()
    if not scheme:
        raise UnsafeURL("URL must start with http:// or https://")
    if scheme not in _ALLOWED_SCHEMES:
        raise UnsafeURL("only http and https URLs can be fetched")
    # Two parsers must agree there is no userinfo: a stray '@' in the authority
    # is how parser-differential SSRF tricks start.
    if parsed.userinfo or "@" in urlsplit(candidate).netloc:
        raise UnsafeURL("URLs with credentials (user:password@) are not allowed")

    host = _ascii_host(parsed)
    if not host:
        raise UnsafeURL("URL has no host")
    if ":" not in host and not _HOSTNAME_RE.fullmatch(host):
        raise UnsafeURL("URL host is not a valid hostname")
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        raise UnsafeURL("URL port must be between 1 and 65535")

    if not allow_private:
        literal = _literal_address(host)
        if literal is not None and _is_forbidden(literal, _parse_networks(allow_networks)):
            raise UnsafeURL(f"refusing to fetch {host}: not a public address")
    return candidate


def resolve_public_addresses(
    host: str,
    port: int,
    *,
    allow_private: bool,
    allow_networks: Iterable[str] = (),
) -> list[str]:
    """Resolve ``host`` and return its addresses (deduplicated, resolver order).

    Every address must be globally routable unless ``allow_private`` is true or
    the address lies in one of ``allow_networks`` (CIDR strings, for operators
    who trust a particular internal range). One bad address refuses the whole
    host: an attacker's DNS would otherwise mix a public and a private answer.

    Raises:
        UnsafeURL: an address is not public.
        FetchError: the host cannot be resolved.
    """
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        raise FetchError(f"could not resolve host {host}") from None

    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 scope id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"could not resolve host {host}")
    if allow_private:
        return addresses

    networks = _parse_networks(allow_networks)
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise UnsafeURL(f"refusing to fetch {host}: unrecognized address") from None
        if _is_forbidden(ip, networks):
            # The address itself stays out of the message: it would map internal DNS.
            raise UnsafeURL(f"refusing to fetch {host}: it resolves to a non-public address")
    return addresses


def _ascii_host(parsed: httpx.URL) -> str:
    """The host as sent on the wire: lowercase ASCII, IDNA-encoded, IPv6 unbracketed."""
    return parsed.raw_host.decode("ascii", errors="replace").lower().rstrip(".")


def _literal_address(host: str) -> _IPAddress | None:
    """The address an IP-literal host denotes, legacy integer/octal/hex forms included."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4_RE.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _parse_networks(networks: Iterable[str]) -> tuple[_IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def _is_forbidden(ip: _IPAddress, allowed: tuple[_IPNetwork, ...] = ()) -> bool:
    """Whether ``ip`` is anything but a globally routable unicast address."""
    if any(ip in network for network in allowed):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d reaches a.b.c.d
            return _is_forbidden(ip.ipv4_mapped, allowed)
        if ip in _NAT64_LOCAL_USE:
            return True
        if ip in _NAT64_WELL_KNOWN:  # 64:ff9b::a.b.c.d reaches a.b.c.d via NAT64
            return _is_forbidden(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), allowed)
        if ip.sixtofour is not None and _is_forbidden(ip.sixtofour, allowed):
            return True
        if ip.teredo is not None or ip.is_site_local:
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


# --------------------------------------------------------------------------- fetching


def fetch_url(
    url: str,
    *,
    allow_private: bool,
    timeout_s: float = 15.0,
    max_bytes: int,
    max_redirects: int = 5,
    user_agent: str = DEFAULT_USER_AGENT,
    allow_networks: Iterable[str] = (),
    validators: Validators | None = None,
) -> FetchedResource:
    """GET ``url`` and return its body, refusing anything an SSRF guard should.

    Redirects (301, 302, 303, 307, 308) are followed by hand, at most
    ``max_redirects`` of them, and every hop passes :func:`check_url` and
    :func:`resolve_public_addresses` again; the connection goes to the very
    address that was checked (see the module docstring). ``timeout_s`` is one
    deadline for the whole fetch, redirects and body included.
    ``allow_networks`` exempts CIDR ranges from the address check. With
    ``validators`` the request is conditional, and a 304 comes back as a resource with
    ``not_modified`` set and no body.

    Raises:
        UnsafeURL: a URL or a redirect target is refused.
        PayloadTooLarge: the body (or its ``Content-Length``) exceeds ``max_bytes``.
        FetchError: 4xx other than 429, too many redirects, an unresolvable host,
            a TLS certificate that fails verification.
        TransientError: 429, 5xx, a timeout or a network failure.
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    if max_redirects < 0:
        raise ValueError("max_redirects must not be negative")
    networks = tuple(allow_networks)
    deadline = time.monotonic() + timeout_s
    current = url
    for _hop in range(max_redirects + 1):
        current = check_url(current, allow_private=allow_private, allow_networks=networks)
        parsed = httpx.URL(current)
        host = _ascii_host(parsed)
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        addresses = resolve_public_addresses(
            host, port, allow_private=allow_private, allow_networks=networks
        )
        outcome = _fetch_hop(
            parsed,
            host,
            addresses,
            deadline=deadline,
            max_bytes=max_bytes,
            user_agent=user_agent,
            conditional=validators.headers() if validators else {},
        )
        if isinstance(outcome, FetchedResource):
            return outcome
        current = outcome
    raise FetchError(f"too many redirects (more than {max_redirects})")


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TransientError("timed out fetching URL")
    return remaining


def _fetch_hop(
    parsed: httpx.URL,
    host: str,
    addresses: list[str],
    *,
    deadline: float,
    max_bytes: int,
    user_agent: str,
    conditional: dict[str, str],
) -> FetchedResource | str:
    """One request, pinned to the first checked address that accepts a connection.

    Returns the resource, or the absolute URL a redirect points to.
    """
    headers = {
        "Host": parsed.netloc.decode("ascii"),
        "User-Agent": user_agent,
        "Accept": "*/*",
        # Uncompressed: Content-Length then bounds what we hold, and no gzip bomb.
        "Accept-Encoding": "identity",
        **conditional,
    }
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    for index, address in enumerate(addresses):
        try:
            pinned = parsed.copy_with(host=address)
        except (httpx.InvalidURL, ValueError):
            continue
        try:
            return _request(
                parsed,
                pinned,
                headers=headers,
                extensions=extensions,
                deadline=deadline,
                max_bytes=max_bytes,
            )
        except httpx.ConnectError as exc:
            if _caused_by(exc, ssl.SSLCertVerificationError):
                raise FetchError(f"TLS certificate verification failed for {host}") from None
            if index == len(addresses) - 1:
                raise TransientError(f"could not connect to {host}") from None
    raise FetchError(f"could not connect to {host}")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` appears in the chain of causes behind ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _request(
    logical: httpx.URL,
    pinned: httpx.URL,
    *,
    headers: dict[str, str],
    extensions: dict[str, str],
    deadline: float,
    max_bytes: int,
) -> FetchedResource | str:
    """Send one GET to ``pinned``; ``logical`` is the URL the user sees.

    ``httpx.ConnectError`` propagates so the caller can try the next address;
    every other failure becomes a ragd error with a short message.
    """
    timeout = httpx.Timeout(_remaining(deadline))
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=False, trust_env=False, max_redirects=0
            ) as client,
            client.stream("GET", pinned, headers=headers, extensions=extensions) as response,
        ):
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"URL returned HTTP {status} without a Location")
                try:
                    return str(logical.join(location))
                except (httpx.InvalidURL, ValueError, UnicodeError):
                    raise UnsafeURL("URL redirected to a malformed URL") from None
            if status == 304:
                return _not_modified(logical, response.headers)
            if status == 429 or status >= 500:
                raise TransientError(f"URL returned HTTP {status}")
            if not 200 <= status < 300:
                raise FetchError(f"URL returned HTTP {status}")

            declared = response.headers.get("Content-Length")
            if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
                raise PayloadTooLarge(f"URL content is larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise PayloadTooLarge(f"URL content is larger than {max_bytes} bytes")
                _remaining(deadline)
            content_type = response.headers.get("Content-Type")
            validators = _validators(response.headers)
    except httpx.ConnectError:
        raise
    except httpx.TimeoutException:
        raise TransientError("timed out fetching URL") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError):
        raise TransientError("connection failed while fetching URL") from None
    except httpx.DecodingError:
        raise FetchError("could not decode the response body") from None
    except httpx.HTTPError:
        raise FetchError("could not fetch URL") from None

    final_url = str(logical)
    return FetchedResource(
        url=final_url,
        content=bytes(body),
        content_type=_media_type(content_type),
        filename=_filename(final_url),
        etag=validators.etag,
        last_modified=validators.last_modified,
    )


def _validators(headers: httpx.Headers) -> Validators:
    etag, modified = headers.get("ETag"), headers.get("Last-Modified")
    return Validators(
        etag=etag if _header_safe(etag) else None,
        last_modified=modified if _header_safe(modified) else None,
    )


def _not_modified(logical: httpx.URL, headers: httpx.Headers) -> FetchedResource:
    """A 304: nothing changed since the validators we sent (a 304 may repeat them)."""
    found = _validators(headers)
    final_url = str(logical)
    return FetchedResource(
        url=final_url,
        content=b"",
        content_type=None,
        filename=_filename(final_url),
        etag=found.etag,
        last_modified=found.last_modified,
        not_modified=True,
    )


def _media_type(header: str | None) -> str | None:
    if header is None:
        return None
    media_type = header.split(";", 1)[0].strip().lower()
    return media_type or None


def _filename(url: str) -> str | None:
    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    name = unquote(segment).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or None
