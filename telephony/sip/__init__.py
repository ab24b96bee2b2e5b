"""Pure-asyncio SIP engine: message, transport, transaction, dialog layers and a small core.

No Django import anywhere in this package (enforced by ``ruff.toml``'s banned-api rule).
"""
