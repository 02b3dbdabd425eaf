"""The simulated telephony world behind the ACS emulator: calls, ringing devices, media actions,
recordings, and the events each change raises (mid-call CloudEvents and Event Grid events).

One `World` object, one lock; each concern is a module with a mixin class:
core (state, faults, timers, lookups) <- events <- recording <- calls <- participants;
media and views sit on the core too, and phones (the simulated people) on calls and media.
"""

from __future__ import annotations

from emulators.acs.errors import AcsError
from emulators.acs.world.browsers import Browsers
from emulators.acs.world.model import Fault, WorldConfig
from emulators.acs.world.participants import Participants
from emulators.acs.world.phones import Phones
from emulators.acs.world.views import Views

__all__ = ["AcsError", "Fault", "World", "WorldConfig"]


class World(Participants, Phones, Views, Browsers):
    """The whole simulated world: the REST operations, the control actions and the views."""
