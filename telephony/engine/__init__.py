"""Django's side of the engine contract (``telephony.sip.contract``).

The SIP engine imports no Django; Django meets it only through Redis, and only here:

- ``snapshots``: routing snapshots out (built from the models, published on commit);
- ``state``: the engines' live state in (registrations, calls in progress, bans) and commands
  out (hang-up, check-sync);
- ``cdr`` and ``tasks``: call events in, as CDRs (the Celery drain of the event stream);
- ``store``: the Redis names with this PBX's prefix, and the client.

The fan-out of events to browsers and webhooks (``events.fanout``) reads the same stream.
"""
