"""Nothing of the telephony app is in the Django admin.

Its models live in each tenant's schema, while the admin is served on the provider's host only
(see ``pbx.admin``): extensions, imports, ring, paging and pickup groups, call park and the rest
are managed in the tenant's portal (and the REST API), where a system admin arrives with
"Manage". Registered here, their pages would query tables the public schema does not have.
"""
