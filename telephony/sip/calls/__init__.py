"""Calls between extensions of one tenant, as a back-to-back user agent: calls as legs and
destinations.

Every call is two dialogs we own, linked (``call.py``): the caller's (A leg) and the callee's
(B leg; one fork per registered phone while ringing). Where a call goes is decided by a pure
function (``routing.py``, with the forwarding policy of ``forwarding.py``) as a
``Destination`` whose kind names a registered destination type (``destinations/``: today
``extension``, ``forward`` and ``reject``). The features around a call are modules of their
own: bridging of in-dialog requests (``bridge.py``), transfer (``transfer.py``), media
anchoring through rtpengine (``anchor.py``), the Redis mirror of live calls (``mirror.py``),
the per-tenant call limit shared by the engines (``limits.py``) and the control channel
(``control.py``). ``dispatcher.py`` takes the SIP requests; ``layer.py`` assembles it all for
``PbxEngine``.

Side effects for the rest of the platform, all non-blocking: call events on the event stream
(``call.started|ringing|answered|transferred|forwarded|ended``, the CDR consumer's input;
after a forward or a transfer the call's events carry the next ``segment`` and its ``kind``),
the calls in progress in Redis hash ``sip:calls:<schema>``, and the commands of channel
``sip:control``.
"""

from .call import Call, Calls, Leg
from .layer import CallLayer
from .routing import Destination

__all__ = ["Call", "CallLayer", "Calls", "Destination", "Leg"]
