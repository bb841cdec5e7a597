"""The base of everything a connection started that is still in progress."""


class Request:
    """Something a connection started that is still in progress (kept in conn.active)."""

    cancellable = False  # whether a `cancel` request may target it (and whether ping counts it)

    def __init__(self, conn, rid):
        self.conn, self.id = conn, rid

    def send(self, kind, body=b"", **fields):
        self.conn.send({"type": kind, "id": self.id, **fields}, body)

    def input_backlog(self):
        return 0

    def retire(self):
        if self.conn.active.get(self.id) is self:
            del self.conn.active[self.id]
        self.conn.agent.touch()  # work ending is activity: auto-stop counts idle time from here


class OutputRequest(Request):
    """A request whose stdout/stderr are forwarded up to maxOutputBytes per stream."""

    cancellable = True

    def __init__(self, conn, rid, cap):
        super().__init__(conn, rid)
        self.cap = cap
        self.forwarded = {"stdout": 0, "stderr": 0}
        self.truncated = False

    def output(self, stream, data):
        room = self.cap - self.forwarded[stream]
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        if data:
            self.forwarded[stream] += len(data)
            self.send(stream, data)
