"""Per-client state in bounded memory: a least-recently-seen table with a fixed number of entries.

A client is its API key's id when keys are on, else its address (``request.client.host``; behind a proxy,
run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the caller's, not the proxy's).
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

State = TypeVar("State")


class BoundedTable(Generic[State]):
    """At most ``capacity`` clients' states; a new client evicts the one seen longest ago, so a flood of
    one-off addresses costs a bounded amount of memory and only forgets the quietest clients."""

    def __init__(self, capacity: int, new: Callable[[], State], on_evict: Callable[[str], None] | None = None) -> None:
        self.capacity, self._new, self._on_evict = capacity, new, on_evict
        self._states: OrderedDict[str, State] = OrderedDict()
        self.evicted = 0

    def get(self, client: str) -> State:
        """The client's state (created on first sight), marked as the most recently seen."""
        state = self._states.get(client)
        if state is None:
            if len(self._states) >= self.capacity:
                gone, _ = self._states.popitem(last=False)
                self.evicted += 1
                if self._on_evict is not None:
                    self._on_evict(gone)
            state = self._states[client] = self._new()
        else:
            self._states.move_to_end(client)
        return state

    def peek(self, client: str) -> State | None:
        """The client's state if it is remembered, without creating it or marking it as seen."""
        return self._states.get(client)

    def put(self, client: str, state: State) -> None:
        """Replace a remembered client's state."""
        self._states[client] = state

    def __len__(self) -> int:
        return len(self._states)
