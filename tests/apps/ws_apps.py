"""WebSocket endpoints for tests/integration/test_websocket_e2e.py and the websocket benchmark:
a Starlette application (echo, subprotocols, refusal, close codes, denial) and a raw ASGI echo."""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CLOSED: dict[str, int] = {}          # how the last "/record" connection ended, for "/closed"


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


async def subprotocol(ws: WebSocket) -> None:
    offered = ws.scope["subprotocols"]
    chosen = "chat.v2" if "chat.v2" in offered else None
    await ws.accept(subprotocol=chosen, headers=[(b"x-ws", b"yes")])
    await ws.send_json({"offered": offered, "path": ws.scope["path"], "root": ws.scope["root_path"],
                        "scheme": ws.scope["scheme"], "query": ws.scope["query_string"].decode()})
    await ws.close()


async def refuse(ws: WebSocket) -> None:
    await ws.close(code=1008)          # before accept: the handshake is refused (403)


async def deny(ws: WebSocket) -> None:
    await ws.send_denial_response(PlainTextResponse("no entry", status_code=418))


async def server_close(ws: WebSocket) -> None:
    await ws.accept()
    text = await ws.receive_text()
    code, _, reason = text.partition(" ")
    await ws.close(code=int(code), reason=reason)


async def record(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect as exc:
        CLOSED["code"] = exc.code
        CLOSED["reason"] = exc.reason


async def closed(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_json(CLOSED)
    await ws.close()


async def crash(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive_text()
    raise RuntimeError("websocket app failed")


async def plain(request):
    return PlainTextResponse("plain http")


app = Starlette(routes=[
    WebSocketRoute("/echo", echo),
    WebSocketRoute("/sub", subprotocol),
    WebSocketRoute("/refuse", refuse),
    WebSocketRoute("/deny", deny),
    WebSocketRoute("/close", server_close),
    WebSocketRoute("/record", record),
    WebSocketRoute("/closed", closed),
    WebSocketRoute("/crash", crash),
    Route("/plain", plain),
])


async def raw_echo(scope, receive, send):
    """A bare ASGI echo (the benchmark's app: no framework between server and socket)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
