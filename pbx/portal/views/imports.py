"""Bulk CSV import pages: upload (dry run), the per-row report, start, and live progress."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx import imports
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import (
    held_permissions,
    tenant_member_required,
    tenant_permission_required,
)
from pbx.portal.forms import ImportForm
from telephony.models import ImportJob
from tenants.choices import Permission

from .common import actor, page

KIND = "extensions"


def upload_page(request, *, kind: str, template: str, section: str):
    """Upload a CSV of ``kind`` and dry-run it; shared by every importer's page."""
    importer = imports.get_importer(kind)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > imports.MAX_BYTES:
            # Refused before reading it into memory.
            form.add_error("file", f"The file is larger than {imports.MAX_BYTES // 1024} KiB.")
        else:
            try:
                job = imports.do_dry_run_import(
                    kind=kind, data=upload.read(), filename=upload.name, actor=actor(request)
                )
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                return redirect("portal:import_detail", pk=job.pk)
    recent = ImportJob.objects.filter(kind=kind).order_by("-created_at")[:10]
    ctx = {
        "form": form,
        "importer": importer,
        "recent": recent,
        "max_rows": imports.MAX_ROWS,
        "max_kib": imports.MAX_BYTES // 1024,
    }
    return page(request, template, ctx, section=section)


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def import_upload(request):
    return upload_page(
        request, kind=KIND, template="portal/imports/upload.html", section="extensions"
    )


def _job(request, pk) -> ImportJob:
    """The job, if the user holds the permission its importer needs (else 404)."""
    job = get_object_or_404(ImportJob, pk=pk)
    if imports.get_importer(job.kind).permission not in held_permissions(request):
        raise Http404
    return job


@tenant_member_required
def import_detail(request, pk):
    job = _job(request, pk)
    ctx = {"job": job, "done": imports.progress(job)}
    return page(request, "portal/imports/detail.html", ctx, section="extensions")


@tenant_member_required
def import_progress(request, pk):
    """The progress fragment htmx polls; when the job ends, htmx reloads the whole page."""
    job = _job(request, pk)
    ctx = {"job": job, "done": imports.progress(job)}
    response = page(request, "portal/imports/_progress.html", ctx)
    if job.is_finished and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@require_POST
@tenant_member_required
def import_start(request, pk):
    job = _job(request, pk)
    try:
        imports.do_start_import(job, actor=actor(request))
    except PbxError as exc:
        messages.error(request, exc.message)
    return redirect("portal:import_detail", pk=job.pk)
