"""Terminals (PTY) over the server's WebSocket route, sans-IO: the RFC 6455 client handshake and
framing, and the terminal's messages, with no socket in sight. ``pty.py`` has the two thin
transports (a socket and a reader thread; asyncio streams and a reader task).

Binary frames carry terminal bytes both ways; text frames carry ``{"type": "resize", cols,
rows}`` from the client and ``{"type": "exit", "exitCode"}`` from the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import errors
from ._protocol import error_from_response

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def handshake(host: str, target: str, headers: Mapping[str, str]) -> Tuple[bytes, str]:
    """The upgrade request's bytes, and the key whose accept value the answer must carry."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def parse_head(head: bytes) -> Tuple[int, Dict[str, str]]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers: Dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


def check_upgrade(status: int, headers: Mapping[str, str], key: str, body: bytes) -> None:
    """Raises the answer's ``KilnError`` unless it is the ``101`` for our key."""
    if status != 101:
        raise error_from_response(status, body)
    expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != expected:
        raise errors.AgentUnavailableError("The server's WebSocket answer did not accept our key")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    head = bytearray([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 1 << 16:
        head.append(0x80 | 126)
        head += struct.pack("!H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", n)
    mask = os.urandom(4)
    head += mask
    # XOR with the mask, a machine word at a time.
    repeated = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big") if n else b""
    return bytes(head) + masked


class PtySession:
    """One terminal connection's state: feed it the bytes that arrive, send what it returns."""

    def __init__(self, on_data: Optional[Callable[[bytes], Any]]) -> None:
        self._on_data = on_data
        self._buf = bytearray()
        self._fragments = bytearray()
        self._fragment_op = 0
        self.exit_code: Optional[int] = None
        self.closed = False

    # What to send

    def data_frame(self, data: Any) -> bytes:
        return encode_frame(OP_BINARY, data.encode("utf-8") if isinstance(data, str) else bytes(data))

    def resize_frame(self, cols: int, rows: int) -> bytes:
        for name, value in (("cols", cols), ("rows", rows)):
            if not isinstance(value, int) or not 1 <= value <= 10_000:
                raise errors.InvalidArgumentError(f"{name} must be a whole number from 1 to 10000", field=name)
        return encode_frame(OP_TEXT, json.dumps({"type": "resize", "cols": cols, "rows": rows}).encode())

    def close_frame(self) -> bytes:
        return encode_frame(OP_CLOSE, struct.pack("!H", 1000))

    # What arrived

    def receive(self, data: bytes) -> bytes:
        """Consumes bytes from the socket; returns bytes to send back (pongs, a close reply)."""
        self._buf += data
        replies = bytearray()
        for opcode, payload in self._frames():
            if opcode == OP_PING:
                replies += encode_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                if not self.closed:
                    replies += encode_frame(OP_CLOSE, payload[:2])
                self.closed = True
            elif opcode == OP_BINARY:
                if self._on_data is not None and payload:
                    self._on_data(payload)
            elif opcode == OP_TEXT:
                message = json.loads(payload.decode("utf-8"))
                if isinstance(message, dict) and message.get("type") == "exit":
                    self.exit_code = int(message.get("exitCode", -1))
        return bytes(replies)

    def _frames(self) -> List[Tuple[int, bytes]]:
        out: List[Tuple[int, bytes]] = []
        while True:
            buf = self._buf
            if len(buf) < 2:
                return out
            fin, opcode = buf[0] & 0x80, buf[0] & 0x0F
            masked, n = buf[1] & 0x80, buf[1] & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return out
                n = struct.unpack("!H", buf[2:4])[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return out
                n = struct.unpack("!Q", buf[2:10])[0]
                pos = 10
            if n > MAX_MESSAGE_BYTES:
                raise errors.AgentUnavailableError("The terminal sent a frame over 16 MiB")
            mask = b""
            if masked:
                mask = bytes(buf[pos : pos + 4])
                pos += 4
            if len(buf) < pos + n:
                return out
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode >= 0x8:  # control frames are never fragmented
                out.append((opcode, payload))
            elif opcode == OP_CONT:
                self._fragments += payload
                if fin:
                    out.append((self._fragment_op, bytes(self._fragments)))
                    self._fragments = bytearray()
            elif fin:
                out.append((opcode, payload))
            else:
                self._fragment_op = opcode
                self._fragments = bytearray(payload)


def pty_body(
    cols: int, rows: int, command: Any, cwd: Optional[str], env: Optional[Mapping[str, str]]
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"cols": cols, "rows": rows}
    if command is not None:
        body["command"] = command if isinstance(command, str) else list(command)
    if cwd is not None:
        body["cwd"] = cwd
    if env is not None:
        body["env"] = dict(env)
    return body
