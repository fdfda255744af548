"""Sitemaps (sitemaps.org): the page URLs of a ``<urlset>``, or the child sitemaps of a
``<sitemapindex>``.

Parsed with defusedxml, so a sitemap cannot expand entities (billion laughs), reach
external ones or declare a DTD; the number of URLs is bounded by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

# Types and the error class only: parsing is defusedxml's (fromstring below).
from xml.etree.ElementTree import Element  # nosec B405
from xml.etree.ElementTree import ParseError as XmlParseError  # nosec B405

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ragd.errors import ParseError, PayloadTooLarge

__all__ = ["Sitemap", "parse_sitemap"]


@dataclass(frozen=True)
class Sitemap:
    """``pages`` of a urlset, or ``sitemaps`` of an index (the other list is empty)."""

    pages: list[str]
    sitemaps: list[str]


def parse_sitemap(data: bytes, *, max_urls: int) -> Sitemap:
    """The ``<loc>`` URLs of a sitemap, in order and without repeats.

    Raises:
        ParseError: not XML, a forbidden construct (DTD, entities), or not a sitemap.
        PayloadTooLarge: more than ``max_urls`` URLs.
    """
    try:
        root = fromstring(data, forbid_dtd=True)
    except (XmlParseError, DefusedXmlException, ValueError):
        raise ParseError("the sitemap is not valid XML (or declares a DTD or entities)") from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise ParseError("not a sitemap: the root element must be <urlset> or <sitemapindex>")
    locations = _locations(root, "url" if kind == "urlset" else "sitemap", max_urls)
    if kind == "urlset":
        return Sitemap(pages=locations, sitemaps=[])
    return Sitemap(pages=[], sitemaps=locations)


def _locations(root: Element, entry: str, max_urls: int) -> list[str]:
    found: dict[str, None] = {}
    for child in root:
        if _local(child.tag) != entry:
            continue
        for part in child:
            if _local(part.tag) == "loc" and part.text and part.text.strip():
                found[part.text.strip()] = None
                if len(found) > max_urls:
                    raise PayloadTooLarge(f"the sitemap lists more than {max_urls} URLs")
    return list(found)


def _local(tag: str) -> str:
    """The tag without its namespace: ``{http://www.sitemaps.org/...}url`` is ``url``."""
    return tag.rsplit("}", 1)[-1]
