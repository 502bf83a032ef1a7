#!/usr/bin/env python3
"""HTTP/2 conformance cases in the manner of h2spec (which cannot be
installed from the registries this project may use), driven with raw frames
and Python's `hpack` (from the `h2` package) against a gateway serving h2c
prior knowledge: `python3 tests/h2_conformance.py HOST:PORT`.

Each case names the RFC 9113 section it checks and what a conforming server
does; the script prints one line per case and exits 1 if any case fails.
The route under test must answer `GET /` with 200 and must accept at most
32 concurrent streams (`http2.maxConcurrentStreams: 32`)."""
import socket
import struct
import sys
import time

import hpack

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 3: "FLOW_CONTROL_ERROR", 6: "FRAME_SIZE_ERROR",
          7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

HOST, PORT = sys.argv[1].rsplit(":", 1)


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def headers(fields):
    return hpack.Encoder().encode(fields)


GET = [(":method", "GET"), (":scheme", "http"), (":authority", "conformance.test"), (":path", "/")]


class Conn:
    def __init__(self):
        self.s = socket.create_connection((HOST, int(PORT)), timeout=3)
        self.buf = b""
        self.send(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            pass

    def frames(self, wait=3.0):
        """Frames the server sends until it closes or `wait` passes."""
        deadline = time.time() + wait
        while time.time() < deadline:
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + length:
                    break
                kind, flags = self.buf[3], self.buf[4]
                stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                payload = self.buf[9:9 + length]
                self.buf = self.buf[9 + length:]
                if kind == SETTINGS and not flags & ACK:
                    self.send(frame(SETTINGS, ACK, 0))
                yield kind, flags, stream, payload
            self.s.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return
            except OSError:
                yield "closed", 0, 0, b""
                return
            if not chunk:
                yield "closed", 0, 0, b""
                return
            self.buf += chunk

    def expect(self, want):
        """`want`: ("goaway", CODE), ("rst", STREAM, CODE), ("status", STREAM, CODE),
        ("ping", PAYLOAD), or ("closed",): what a conforming server sends."""
        seen = []
        decoder = hpack.Decoder()
        for kind, flags, stream, payload in self.frames():
            if kind == GOAWAY:
                code = int.from_bytes(payload[4:8], "big")
                seen.append(f"GOAWAY {ERRORS.get(code, code)}")
                if want[0] == "goaway" and code == want[1]:
                    return True, seen
                if want[0] == "closed":
                    return True, seen
            elif kind == RST_STREAM:
                code = int.from_bytes(payload[:4], "big")
                seen.append(f"RST_STREAM {stream} {ERRORS.get(code, code)}")
                if want[0] == "rst" and stream == want[1] and code in want[2:]:
                    return True, seen
            elif kind == HEADERS:
                fields = dict(decoder.decode(payload))
                status = fields.get(":status") or fields.get(b":status")
                status = int(status) if status else None
                seen.append(f"HEADERS {stream} {status}")
                if want[0] == "status" and stream == want[1] and status == want[2]:
                    return True, seen
            elif kind == PING and flags & ACK:
                seen.append("PING ACK")
                if want[0] == "ping" and payload == want[1]:
                    return True, seen
            elif kind == "closed":
                seen.append("closed")
                return want[0] == "closed", seen
        return False, seen


def case(section, what, send, want, known=None):
    """`known`: what the `h2` crate does instead, where it answers a protocol
    violation with another error code than the RFC names (still a connection
    error that closes the connection): reported as a deviation, not a failure."""
    for expected, label in [(want, "ok  "), (known, "dev ")]:
        if expected is None:
            continue
        c = Conn()
        try:
            send(c)
            ok, seen = c.expect(expected)
        finally:
            c.s.close()
        if ok:
            note = f" (RFC: {want[0]} {ERRORS.get(want[-1], want[-1])})" if label == "dev " else ""
            print(f"{label} {section:8} {what}: {', '.join(seen[-3:])}{note}")
            return label
    print(f"FAIL {section:8} {what}: {', '.join(seen[-3:]) or 'nothing'}")
    return None


def main():
    get = headers(GET)
    cases = [
        ("8.1", "a GET is answered", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, get)), ("status", 1, 200)),
        ("6.7", "PING is answered with the same payload", lambda c: c.send(frame(PING, 0, 0, b"h2spec!!")), ("ping", b"h2spec!!")),
        ("5.5", "an unknown frame type is ignored", lambda c: c.send(frame(0xEE, 0, 0, b"x") + frame(PING, 0, 0, b"after!!!")), ("ping", b"after!!!")),
        ("4.2", "a frame over SETTINGS_MAX_FRAME_SIZE", lambda c: c.send(frame(HEADERS, END_HEADERS, 1, get) + frame(DATA, 0, 1, b"x" * 16385)), ("goaway", 6)),
        ("5.1", "DATA on an idle stream", lambda c: c.send(frame(DATA, 0, 1, b"x")), ("goaway", 1)),
        ("5.1.1", "a stream with an even identifier", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 2, get)), ("goaway", 1)),
        ("5.1.1", "a stream identifier lower than a previous one", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, get) + frame(HEADERS, END_STREAM | END_HEADERS, 3, get)), ("goaway", 1)),
        ("5.1.2", "more streams than SETTINGS_MAX_CONCURRENT_STREAMS", lambda c: c.send(b"".join(frame(HEADERS, END_HEADERS, 2 * i + 1, get) for i in range(33))), ("rst", 65, 1, 7)),
        ("6.1", "DATA on stream 0", lambda c: c.send(frame(DATA, 0, 0, b"x")), ("goaway", 1)),
        ("6.2", "HEADERS on stream 0", lambda c: c.send(frame(HEADERS, END_HEADERS | END_STREAM, 0, get)), ("goaway", 1)),
        ("6.4", "RST_STREAM on an idle stream", lambda c: c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8))), ("goaway", 1)),
        ("6.5", "SETTINGS ACK with a payload", lambda c: c.send(frame(SETTINGS, ACK, 0, b"\0" * 6)), ("goaway", 6), ("goaway", 1)),
        ("6.5.2", "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", lambda c: c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 2**31))), ("goaway", 3), ("goaway", 1)),
        ("6.5.2", "SETTINGS_ENABLE_PUSH other than 0 or 1", lambda c: c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 2))), ("goaway", 1)),
        ("6.5.2", "SETTINGS_MAX_FRAME_SIZE below 16384", lambda c: c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 5, 1000))), ("goaway", 1)),
        ("6.9", "WINDOW_UPDATE with increment 0", lambda c: c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0))), ("goaway", 1)),
        ("6.9.1", "a connection window over 2^31-1", lambda c: c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1))), ("goaway", 3)),
        ("6.10", "CONTINUATION without HEADERS", lambda c: c.send(frame(CONTINUATION, END_HEADERS, 1, get)), ("goaway", 1)),
        ("6.10", "a frame between HEADERS and CONTINUATION", lambda c: c.send(frame(HEADERS, 0, 1, get[:2]) + frame(PING, 0, 0, b"12345678")), ("goaway", 1)),
        ("4.3", "a header block that does not decode", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\xff\xff\xff\xff")), ("goaway", 9), ("goaway", 1)),
        # Malformed: a stream error, or (as h2spec accepts) a connection error.
        ("8.2", "an uppercase field name", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, headers(GET + [("X-Upper", "1")]))), ("rst", 1, 1), ("goaway", 1)),
        ("8.2.2", "a connection-specific field", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, headers(GET + [("connection", "keep-alive")]))), ("rst", 1, 1)),
        ("8.2.2", "TE other than trailers", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, headers(GET + [("te", "gzip")]))), ("rst", 1, 1)),
        ("8.3", "a pseudo-header after a regular field", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, headers(GET[:3] + [("x-a", "1"), (":path", "/")]))), ("rst", 1, 1)),
        ("8.3.1", "no :method", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, headers(GET[1:]))), ("rst", 1, 1)),
        ("8.3.1", "an empty :path", lambda c: c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, headers(GET[:3] + [(":path", "")]))), ("rst", 1, 1)),
        ("8.1.1", "a body shorter than its content-length", lambda c: c.send(frame(HEADERS, END_HEADERS, 1, headers([(":method", "POST")] + GET[1:] + [("content-length", "5")])) + frame(DATA, END_STREAM, 1, b"abc")), ("rst", 1, 1)),
    ]
    results = [case(*c) for c in cases]
    failed, deviations = results.count(None), results.count("dev ")
    print(f"{len(cases) - failed}/{len(cases)} cases passed ({deviations} with the h2 crate's error code, not the RFC's)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
