"""A gRPC server and client (Python's grpcio, which the gateway's authors did
not write) for the integration tests of `protocol: h2` clusters.

    echo.py serve [--cert CERT --key KEY]
        Serves `echo.Echo` on 127.0.0.1, port 0; prints the port, then serves
        until stdin closes.
    echo.py call ADDRESS [--ca CA --name NAME] [--metadata K=V ...]
        Calls every method through ADDRESS (the gateway) and prints one JSON
        object with what came back.

Messages are raw bytes (no protobuf schema is needed): the methods are
generic handlers with identity serializers.
"""

import argparse
import json
import sys
import threading

import grpc

SERVICE = "echo.Echo"


def unary(request, context):
    if request.startswith(b"fail:"):
        context.abort(grpc.StatusCode.NOT_FOUND, request[5:].decode())
    context.set_trailing_metadata((("x-trailer", "unary"),))
    md = dict(context.invocation_metadata())
    return b"echo:" + request + b"|forwarded-for=" + md.get("x-forwarded-for", "").encode()


def server_stream(request, context):
    count = int(request.decode() or "3")
    for i in range(count):
        yield b"part-%d" % i
    context.set_trailing_metadata((("x-trailer", "stream"),))


def client_stream(requests, context):
    total = 0
    n = 0
    for r in requests:
        total += len(r)
        n += 1
    return b"%d messages, %d bytes" % (n, total)


def bidi(requests, context):
    for r in requests:
        yield r.upper()


def big(request, context):
    return b"x" * int(request.decode())


def serve(args):
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Big": grpc.unary_unary_rpc_method_handler(big),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if args.cert:
        with open(args.cert, "rb") as f:
            cert = f.read()
        with open(args.key, "rb") as f:
            key = f.read()
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(((key, cert),)))
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


def call(args):
    options = []
    if args.ca:
        with open(args.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        options.append(("grpc.ssl_target_name_override", args.name))
        channel = grpc.secure_channel(args.address, creds, options=options)
    else:
        channel = grpc.insecure_channel(args.address)
    metadata = tuple(tuple(kv.split("=", 1)) for kv in args.metadata)
    out = {}
    method = lambda kind, name: getattr(channel, kind)("/%s/%s" % (SERVICE, name))

    response, call_ = method("unary_unary", "Unary").with_call(b"hello", metadata=metadata, timeout=10)
    out["unary"] = response.decode()
    out["unary_trailers"] = dict(call_.trailing_metadata() or ())

    try:
        method("unary_unary", "Unary")(b"fail:no such thing", metadata=metadata, timeout=10)
        out["error"] = None
    except grpc.RpcError as e:
        out["error"] = {"code": e.code().name, "details": e.details()}

    stream = method("unary_stream", "ServerStream")(b"5", metadata=metadata, timeout=10)
    out["server_stream"] = [m.decode() for m in stream]
    out["server_stream_trailers"] = dict(stream.trailing_metadata() or ())

    parts = (b"a" * n for n in (1, 10, 100, 70000))
    out["client_stream"] = method("stream_unary", "ClientStream")(parts, metadata=metadata, timeout=10).decode()

    # Bidirectional: each message is answered before the next is sent.
    replies = []
    send_next = threading.Event()
    words = ["one", "two", "three"]

    def requests():
        for w in words:
            yield w.encode()
            send_next.wait(10)
            send_next.clear()

    for r in method("stream_stream", "Bidi")(requests(), metadata=metadata, timeout=10):
        replies.append(r.decode())
        send_next.set()
    out["bidi"] = replies

    size = 3 * 1024 * 1024
    big = method("unary_unary", "Big")(str(size).encode(), metadata=metadata, timeout=20)
    out["big"] = len(big)
    print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--cert")
    s.add_argument("--key")
    c = sub.add_parser("call")
    c.add_argument("address")
    c.add_argument("--ca")
    c.add_argument("--name", default="localhost")
    c.add_argument("--metadata", action="append", default=[])
    args = p.parse_args()
    serve(args) if args.cmd == "serve" else call(args)


if __name__ == "__main__":
    main()
