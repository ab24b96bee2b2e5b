"""Nothing of the telephony app is in the Django admin.

Its models live in each tenant's schema, while the admin is served on the provider's host only
(see ``pbx.admin``): extensions, imports and the rest are managed in the tenant's portal, where
a system admin arrives with "Manage".
"""
