"""Search, sort and paginate a list page the same way everywhere (``?q=&sort=&page=``)."""

from functools import reduce
from operator import or_
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Q

PAGE_SIZE = 25


def list_page(
    request,
    queryset,
    *,
    search: tuple[str, ...],
    sorts: dict[str, str],
    default: str,
    keep: dict[str, str] | None = None,
):
    """Return a context dict: ``page`` (a Page), ``q``, ``sort``, ``sort_links``, and
    ``queryset`` (every row the page's search and sort select, for a CSV export).

    ``sorts`` maps a public key to an ORM field; ``-key`` sorts descending. The primary key is
    always the last ordering term, so pages never overlap. ``keep`` holds other query
    parameters (a page's filters) that sort and page links carry along.
    """
    q = request.GET.get("q", "").strip()[:100]
    if q and search:
        queryset = queryset.filter(reduce(or_, (Q(**{f"{f}__icontains": q}) for f in search)))
    sort = request.GET.get("sort", default)
    key = sort.lstrip("-")
    if key not in sorts:
        sort, key = default, default.lstrip("-")
    prefix = "-" if sort.startswith("-") else ""
    queryset = queryset.order_by(f"{prefix}{sorts[key]}", f"{prefix}pk")
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))

    def link(**params):
        merged = {**(keep or {}), "q": q, "sort": sort, **params}
        return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})

    sort_links = {
        k: {
            "url": link(sort=f"-{k}" if sort == k else k, page=None),
            "active": "asc" if sort == k else "desc" if sort == f"-{k}" else "",
        }
        for k in sorts
    }
    return {
        "queryset": queryset,
        "page": page,
        "q": q,
        "sort": sort,
        "sort_links": sort_links,
        "prev_url": link(page=page.previous_page_number()) if page.has_previous() else "",
        "next_url": link(page=page.next_page_number()) if page.has_next() else "",
    }


def paged(request, items, *, q: str = "") -> dict:
    """A list page of ``items`` (a list the view has searched itself): ``page``, ``q`` and the
    pager's links, which keep ``q``."""
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))

    def link(number: int) -> str:
        return "?" + urlencode({"q": q, "page": number} if q else {"page": number})

    return {
        "page": page,
        "q": q,
        "prev_url": link(page.previous_page_number()) if page.has_previous() else "",
        "next_url": link(page.next_page_number()) if page.has_next() else "",
    }
