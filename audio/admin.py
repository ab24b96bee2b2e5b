"""Nothing of the audio app is in the Django admin, as for telephony and routing.

Prompts, music on hold, mailboxes and messages live in each tenant's schema, while the admin is
served on the provider's host only (``pbx.admin``), in the public schema where these tables do
not exist. They are managed in the tenant's portal and the REST API (``audio.api``), where a
system admin arrives with "Manage", through the same ``audio.actions``.
"""
