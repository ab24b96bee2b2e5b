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
