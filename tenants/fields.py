"""The groups of a tenant's (and a dealer's) fields, named once for the models, the actions, the
serializers, the admin and the portal forms: a field added to a group reaches every one of them.

No Django import here: the models module builds on these names.
"""

#: Numeric quotas a dealer gives its tenants and sub-dealers (``tenants.models.Capabilities``).
CAPABILITY_LIMITS = (
    "max_extensions",
    "max_concurrent_calls",
    "max_ring_groups",
    "max_queues",
    "max_ivrs",
    "max_conference_rooms",
)
#: Feature switches, given the same way.
CAPABILITY_FEATURES = (
    "feature_recording",
    "feature_queues",
    "feature_conferences",
    "feature_tenant_trunks",
)
#: Everything an owner is allowed: what a dealer sets and a tenant admin may only read.
CAPABILITY_FIELDS = (*CAPABILITY_LIMITS, *CAPABILITY_FEATURES, "billing_mode")

LOCALE_FIELDS = ("time_zone", "language", "currency")
NUMBERING_FIELDS = ("ext_min_length", "ext_max_length")
#: The web and SIP password rules (``tenants.models.PasswordPolicy``).
PASSWORD_POLICY_FIELDS = (
    "pw_min_length",
    "pw_require_upper",
    "pw_require_lower",
    "pw_require_digit",
    "pw_require_symbol",
    "sip_pw_min_length",
)
SIP_FIELDS = ("sip_digest_sha256", "srtp")

#: What the platform (a system or dealer admin) sets on a tenant besides its identity and hosts.
TENANT_SETTINGS_FIELDS = (
    "name",
    *LOCALE_FIELDS,
    *NUMBERING_FIELDS,
    *PASSWORD_POLICY_FIELDS,
    *SIP_FIELDS,
)
#: What a tenant admin may change of its own company.
COMPANY_FIELDS = ("name", "time_zone", "language", *NUMBERING_FIELDS)

#: What a dealer admin sets on a dealer (its parent is chosen once, at creation).
DEALER_FIELDS = ("name", "max_tenants", "is_active", *CAPABILITY_FIELDS)
