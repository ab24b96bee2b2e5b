"""Call recording in the portal: the tenant admin's settings page (policy, announcement,
retention, storage with a connection test), and the recordings themselves, played and
downloaded from the call history (whoever reads it) or from "My calls" (an end user, only
the calls of its own extension). Audio is streamed through ``audio.storage`` after the
permission check, or answered with a short-lived signed URL when the storage offers one."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from audio import recording_settings
from audio.models import RecordingSettings, RecordingStatus
from audio.recording_access import recordings_for
from audio.recording_actions import do_delete_recording
from audio.storage import CONTENT_TYPES, StorageError, open_recording, signed_url
from pbx.portal.access import host_tenant, tenant_member_required, tenant_permission_required
from pbx.portal.recording_forms import STORAGE_FIELDS, RecordingSettingsForm, settings_initial
from tenants.choices import Permission

from .common import button_action, form_action, page

#: How long a signed download URL stays valid (the player starts within seconds).
SIGNED_URL_SECONDS = 300


@tenant_permission_required(Permission.TENANT_SETTINGS)
def recording_settings_page(request):
    """The tenant's recording settings. "Save" stores them; "Test connection" tries the
    storage as the form stands (an empty secret: the stored one) without saving."""
    tenant = host_tenant(request)
    current = RecordingSettings.load()
    form = RecordingSettingsForm(
        request.POST or None,
        initial=settings_initial(current),
        has_secret=bool(current.secret_encrypted),
    )
    test_result = None
    if request.method == "POST" and form.is_valid():
        fields = form.fields_for_action()
        if "test" in request.POST:
            test_result = _test(form, fields, current)
        elif form_action(
            request,
            form,
            lambda who: recording_settings.do_update_recording_settings(actor=who, fields=fields),
            "Call recording settings saved.",
        ):
            return redirect("portal:recording_settings")
    ctx = {
        "form": form,
        "settings": current,
        "allowed": tenant.feature_recording,
        "platform_default": recording_settings.platform_default(),
        "storage_fields": {str(k): v for k, v in STORAGE_FIELDS.items()},
        "test_result": test_result,
    }
    return page(request, "portal/recordings/settings.html", ctx, section="recording_settings")


def _test(form, fields: dict, current: RecordingSettings) -> dict | None:
    from pbx.errors import PbxError
    from pbx.forms import add_action_errors

    try:
        recording_settings.validate_recording_settings(fields, current)
    except PbxError as exc:
        add_action_errors(form, exc)
        return None
    ok, text = recording_settings.check_connection(
        recording_settings.unsaved_settings(fields, current)
    )
    return {"ok": ok, "text": text}


def _stream(request, recording, fmt: str):
    """The recording's audio in ``fmt``: a redirect to a signed URL when the storage gives
    one, else the bytes streamed from the storage. 404 when it is not stored (yet)."""
    if fmt not in CONTENT_TYPES or recording.status != RecordingStatus.STORED:
        raise Http404
    try:
        url = signed_url(recording, fmt, SIGNED_URL_SECONDS)
        if url:
            return redirect(url)
        handle = open_recording(recording, fmt)
    except (FileNotFoundError, StorageError) as exc:
        raise Http404 from exc
    name = f"recording-{recording.started_at:%Y%m%d-%H%M%S}-{recording.pk}.{fmt}"
    response = FileResponse(
        handle,
        content_type=CONTENT_TYPES[fmt],
        as_attachment=request.GET.get("download") == "1",
        filename=name,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def recording_audio(request, pk, fmt):
    """A recording from the call history."""
    recording = get_object_or_404(
        recordings_for(request.user, host_tenant(request), every=True), pk=pk
    )
    return _stream(request, recording, fmt)


@tenant_member_required
def my_recording_audio(request, pk, fmt):
    """A recording of one of the user's own calls; anyone else's is 404."""
    mine = recordings_for(request.user, host_tenant(request), every=False)
    recording = get_object_or_404(mine, pk=pk)
    return _stream(request, recording, fmt)


@require_POST
@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def recording_delete(request, pk):
    recording = get_object_or_404(
        recordings_for(request.user, host_tenant(request), every=True), pk=pk
    )
    cdr_id = recording.cdr_id
    button_action(
        request, lambda who: do_delete_recording(recording, actor=who), "Recording deleted."
    )
    if cdr_id:
        return redirect("portal:cdr_detail", cdr_id)
    return redirect("portal:cdr_list")
