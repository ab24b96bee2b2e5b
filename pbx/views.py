from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect


def home(request):
    return redirect("portal:index")


def healthz(request):
    """Liveness with the database and cache checked (503 from the middleware if either is down)."""
    from django.core.cache import cache

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    cache.get("healthz")
    return JsonResponse({"status": "ok"})


def server_error(request):
    """The 500 page: the portal's look and the product name, without the database or the cache
    (either may be why we are here) and without anything about the error."""
    from django.conf import settings
    from django.http import HttpResponseServerError
    from django.template import loader

    body = loader.render_to_string("500.html", {"product_name": settings.PBX_PRODUCT_NAME})
    return HttpResponseServerError(body)
