"""A FastAPI application: JSON, path/query params, form-free JSON POST, streaming, errors, lifespan."""

from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse, StreamingResponse


@asynccontextmanager
async def lifespan(app):
    app.state.started = True
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index():
    return {"hello": "fastapi", "started": bool(getattr(app.state, "started", False))}


@app.get("/items/{item_id}")
async def item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/echo")
async def echo(request: Request):
    data = await request.json()
    return {"got": data}


@app.get("/stream")
async def stream():
    async def gen():
        for i in range(5):
            yield f"line {i}\n"
    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/missing")
async def missing():
    raise HTTPException(status_code=404, detail="nope")


@app.get("/crash")
async def crash():
    raise RuntimeError("fastapi crash")


@app.get("/text", response_class=PlainTextResponse)
async def text():
    return "plain"
