"""Bulk CSV import pages: upload (dry run), the per-row report, start, and live progress."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.portal.access import tenant_permission_required
from pbx.portal.forms import ImportForm, add_action_errors
from telephony import imports
from telephony.models import ImportJob
from tenants.choices import Permission

from .common import actor, page

KIND = "extensions"


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def import_upload(request):
    importer = imports.get_importer(KIND)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > imports.MAX_BYTES:
            # Refused before reading it into memory.
            form.add_error("file", f"The file is larger than {imports.MAX_BYTES // 1024} KiB.")
        else:
            try:
                job = imports.do_dry_run_import(
                    kind=KIND, data=upload.read(), filename=upload.name, actor=actor(request)
                )
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                return redirect("portal:import_detail", pk=job.pk)
    recent = ImportJob.objects.filter(kind=KIND).order_by("-created_at")[:10]
    ctx = {
        "form": form,
        "importer": importer,
        "recent": recent,
        "max_rows": imports.MAX_ROWS,
        "max_kib": imports.MAX_BYTES // 1024,
    }
    return page(request, "portal/imports/upload.html", ctx, section="extensions")


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def import_detail(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    ctx = {"job": job, "done": imports.progress(job)}
    return page(request, "portal/imports/detail.html", ctx, section="extensions")


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def import_progress(request, pk):
    """The progress fragment htmx polls; when the job ends, htmx reloads the whole page."""
    job = get_object_or_404(ImportJob, pk=pk)
    ctx = {"job": job, "done": imports.progress(job)}
    response = page(request, "portal/imports/_progress.html", ctx)
    if job.is_finished and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@require_POST
@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def import_start(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        imports.do_start_import(job, actor=actor(request))
    except PbxError as exc:
        messages.error(request, exc.message)
    return redirect("portal:import_detail", pk=job.pk)
