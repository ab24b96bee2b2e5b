"""The engine's side of the carriers' trunks: where their calls come from
(:class:`TrunkDirectory`), and, on one engine at a time, their registrations and health
checks with the state the API and the portal show (:class:`TrunkService`)."""

from .index import TrunkDirectory
from .service import TrunkConfig, TrunkService

__all__ = ["TrunkConfig", "TrunkDirectory", "TrunkService"]
