"""The Redis names the SIP engine and the Django side share (pure: no Django, no I/O).

Both sides build every key and channel from these templates with the deployment's prefix
(``PBX_SIP_REDIS_PREFIX``; the engine's ``PbxConfig.redis_prefix``), so several PBXs, or parallel
test runs, can share one Redis without meeting. A name written here and nowhere else cannot drift
between the writer and the reader.
"""

# Routing snapshots: Django writes, the engine reads (telephony.snapshots -> sip.directory).
SNAPSHOT = "sip:snapshot:{domain}"
DOMAINS = "sip:domains"
SNAPSHOT_CHANGED = "sip:snapshot:changed"
# Call events: the engine writes, the CDR consumer and the fan-out read.
EVENTS = "sip:events"
# Live engine state: the engine writes, the API and portal read (telephony.engine_state).
CALLS = "sip:calls:{schema}"
LOCATION = "sip:loc:{domain}:{user}"
LOCATION_EXPIRY = "sip:loc:expiry"  # engines only: the reaper's index
LOCATION_CHANGED = "sip:loc:changed"  # engines only: drop a hot copy another engine changed
BAN = "sip:ban:{ip}"
BAN_CHANGED = "sip:ban:changed"
# The tenants' calls in progress, shared by the engines for the per-tenant call limit: per
# tenant a hash of engine id -> its calls of that tenant, the set of tenants that have one, and
# each engine's heartbeat (a key with a TTL: a dead engine's calls stop counting). Engines only.
CALL_COUNT = "sip:callcount:{schema}"
CALL_COUNT_TENANTS = "sip:callcounts"
ENGINE_ALIVE = "sip:engine:{engine}"
# Commands to the engines (hang-up, check-sync NOTIFY).
CONTROL = "sip:control"


def key(prefix: str, template: str, **parts: str) -> str:
    """``template`` filled with ``parts``, behind ``prefix``."""
    return prefix + template.format(**parts)
