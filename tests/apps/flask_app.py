"""A Flask application: routes, JSON, form POST, file upload, streaming and an error page."""

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.get("/json")
def json_route():
    return jsonify(ok=True, args=request.args.to_dict(), script_root=request.script_root,
                   path=request.path)


@app.post("/form")
def form():
    return jsonify(form=request.form.to_dict())


@app.post("/upload")
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(name=f.filename, size=len(data), head=data[:8].decode("latin-1"))


@app.get("/stream")
def stream():
    def gen():
        for i in range(10):
            yield f"row {i}\n"
    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.get("/boom")
def boom():
    raise RuntimeError("flask boom")


@app.errorhandler(404)
def not_found(e):
    return jsonify(error="not found"), 404


application = app
