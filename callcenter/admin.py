"""Nothing of the contact centre is in the Django admin (as ``telephony.admin``).

Its models (queues, agents, skills, queue calls, agent state history) live in each tenant's
schema, while the admin is served on the provider's host only (see ``pbx.admin``): queues and
agents are managed in the tenant's portal and the REST API (``/api/v1/queues/``), through
``callcenter.actions``. Registered here, their pages would query tables the public schema does
not have.
"""
