from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from audio.api import recording_settings as recording_settings_views
from audio.api import recordings as recording_views
from audio.api import views as audio_views
from billing.api import accounts as billing_views
from billing.api import rates as rate_views
from billing.api import reports as report_views
from branding.api import views as branding_views
from callcenter.api import stats as queue_stats_views
from callcenter.api import views as callcenter_views
from dealers.api.views import DealerViewSet
from events.api import stats as stats_views
from events.api import views as event_views
from provisioning.api import views as provisioning_views
from routing.api import disa as disa_views
from routing.api import ivr as ivr_views
from routing.api import views as routing_views
from telephony.api import calls as call_views
from telephony.api import features as feature_views
from telephony.api import registrations as registration_views
from telephony.api import softphone as softphone_views
from telephony.api import team as team_views
from telephony.api import user_groups as user_group_views
from telephony.api.views import ExtensionViewSet
from tenants.api import views as tenant_views
from trunks.api import views as trunk_views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("tenants", tenant_views.TenantViewSet, basename="tenant")
router.register("dealers", DealerViewSet, basename="dealer")
router.register("users", tenant_views.UserViewSet, basename="user")
router.register("platform-users", tenant_views.PlatformUserViewSet, basename="platform-user")
router.register("roles", tenant_views.RoleViewSet, basename="role")
router.register("audit", tenant_views.AuditViewSet, basename="audit")
router.register("certificates", tenant_views.CertificateViewSet, basename="certificate")
router.register("extensions", ExtensionViewSet, basename="extension")
router.register("phone-models", provisioning_views.PhoneModelViewSet, basename="phone-model")
router.register(
    "phone-templates", provisioning_views.PhoneTemplateViewSet, basename="phone-template"
)
router.register("devices", provisioning_views.DeviceViewSet, basename="device")
router.register("brands", branding_views.BrandViewSet, basename="brand")
router.register("webhooks", event_views.WebhookViewSet, basename="webhook")
router.register(
    "webhook-deliveries", event_views.WebhookDeliveryViewSet, basename="webhook-delivery"
)
router.register("events", event_views.OutboxEventViewSet, basename="event")
router.register("cdrs", call_views.CdrViewSet, basename="cdr")
router.register("active-calls", call_views.ActiveCallViewSet, basename="active-call")
router.register("registrations", registration_views.RegistrationViewSet, basename="registration")
router.register("sip-bans", registration_views.SipBanViewSet, basename="sip-ban")
router.register("trunks", trunk_views.TrunkViewSet, basename="trunk")
router.register("numbers", trunk_views.NumberViewSet, basename="number")
router.register("inbound-rules", routing_views.InboundRuleViewSet, basename="inbound-rule")
router.register("outbound-rules", routing_views.OutboundRuleViewSet, basename="outbound-rule")
router.register(
    "emergency-numbers", routing_views.EmergencyNumberViewSet, basename="emergency-number"
)
router.register("blacklist", routing_views.BlacklistViewSet, basename="blacklist")
router.register("holidays", routing_views.HolidayViewSet, basename="holiday")
router.register("ivrs", ivr_views.IvrMenuViewSet, basename="ivr")
router.register("prompts", audio_views.PromptViewSet, basename="prompt")
router.register("music-classes", audio_views.MusicClassViewSet, basename="music-class")
router.register("mailboxes", audio_views.MailboxViewSet, basename="mailbox")
router.register("voicemail", audio_views.VoicemailViewSet, basename="voicemail")
router.register("recordings", recording_views.RecordingViewSet, basename="recording")
router.register("disa", disa_views.DisaViewSet, basename="disa")
router.register("ring-groups", team_views.RingGroupViewSet, basename="ring-group")
router.register("paging-groups", team_views.PagingGroupViewSet, basename="paging-group")
router.register("pickup-groups", team_views.PickupGroupViewSet, basename="pickup-group")
router.register("queues", callcenter_views.QueueViewSet, basename="queue")
router.register("user-groups", user_group_views.UserGroupViewSet, basename="user-group")
router.register("report-schedules", report_views.ReportScheduleViewSet, basename="report-schedule")
router.register("rate-tables", rate_views.RateTableViewSet, basename="rate-table")
router.register("rates", rate_views.RateViewSet, basename="rate")
router.register("billing-ledger", billing_views.LedgerViewSet, basename="billing-ledger")
router.register("billing-invoices", billing_views.InvoiceViewSet, basename="billing-invoice")
router.register("billing-accounts", billing_views.BillingAccountViewSet, basename="billing-account")

urlpatterns = [
    path("auth/signin/", tenant_views.SignInView.as_view(), name="api-signin"),
    path("auth/refresh/", tenant_views.RefreshView.as_view(), name="api-refresh"),
    path("auth/signout/", tenant_views.SignOutView.as_view(), name="api-signout"),
    path("auth/me/", tenant_views.MeView.as_view(), name="api-me"),
    path("me/softphone/", softphone_views.MeSoftphoneView.as_view(), name="api-me-softphone"),
    path("company/", tenant_views.CompanyView.as_view(), name="api-company"),
    path("company/brand/", branding_views.TenantBrandView.as_view(), name="api-company-brand"),
    path("brand/", branding_views.EffectiveBrandView.as_view(), name="api-brand"),
    path("brand/<str:kind>/", branding_views.BrandAssetView.as_view(), name="api-brand-asset"),
    path(
        "routing/settings/",
        routing_views.RoutingSettingsView.as_view(),
        name="api-routing-settings",
    ),
    path(
        "routing/destinations/",
        routing_views.DestinationKindsView.as_view(),
        name="api-routing-destinations",
    ),
    path("feature-codes/", feature_views.FeatureCodesView.as_view(), name="api-feature-codes"),
    path(
        "feature-codes/reset/",
        feature_views.FeatureCodesResetView.as_view(),
        name="api-feature-codes-reset",
    ),
    path(
        "feature-codes/<str:feature>/",
        feature_views.FeatureCodeView.as_view(),
        name="api-feature-code",
    ),
    path(
        "calls/<str:call_id>/recording/",
        recording_views.CallRecordingView.as_view(),
        name="api-call-recording",
    ),
    path("billing/account/", billing_views.OwnAccountView.as_view(), name="api-billing-account"),
    path("park/", team_views.ParkSettingsView.as_view(), name="api-park"),
    path(
        "recording-settings/",
        recording_settings_views.RecordingSettingsView.as_view(),
        name="api-recording-settings",
    ),
    path("call-rates/", rate_views.CallRatesView.as_view(), name="api-call-rates"),
    path("live/", event_views.LiveStateView.as_view(), name="api-live"),
    path("stats/calls/", stats_views.CallStatsView.as_view(), name="api-stats-calls"),
    path("reports/calls/", report_views.CallReportView.as_view(), name="api-reports-calls"),
    path("queue-stats/", queue_stats_views.QueueStatsView.as_view(), name="api-queue-stats"),
    path("agent-stats/", queue_stats_views.AgentStatsView.as_view(), name="api-agent-stats"),
    path("wallboard/", queue_stats_views.WallboardView.as_view(), name="api-wallboard"),
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=(), permission_classes=()),
        name="api-schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="api-schema", authentication_classes=(), permission_classes=()
        ),
        name="api-docs",
    ),
    path("", include("callcenter.api.urls")),
    path("", include(router.urls)),
]
