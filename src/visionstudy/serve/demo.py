"""A demo page for a finished run: upload or drop an image, see the top classes and Grad-CAM.

    visionstudy demo runs/digits-quick --port 8000      # then open http://127.0.0.1:8000

    GET  /               the page (run name, test accuracy, a few test images to try)
    GET  /api/info       {"run", "test_accuracy", "classes", "image_shape", "samples"}
    GET  /api/sample/N   test image N of the page as PNG
    POST /api/predict    multipart field `image` → {"top": [{"class", "p"}], "gradcam": data URI}

Starlette + uvicorn (the `demo` extra: 0.6 MB, against 80 MB for Gradio). The model loads once, with
`predict`'s loader; uploads go through the one image reader, so a file gets exactly the class
`visionstudy predict` gives it. A bad upload (not an image, over 10 MB, a decompression bomb)
gets a 4xx with the reason, shown on the page; the server goes on serving. The body is counted as
it streams in (a chunked upload declares no length) and cut at the limit; decoding and the model
run in a worker thread, so `/api/info` and the page answer while a large image decodes.
"""

from __future__ import annotations

import base64
import errno
import io
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from visionstudy.errors import VisionStudyError

MAX_UPLOAD = 10 * 1024 * 1024  # bytes
SAMPLES = 8  # test images offered on the page
TOP_K = 5


class Demo:
    """What the page serves: the run's predictor, its headline numbers and sample test images."""

    def __init__(self, run: Path, data_dir: Path | None = None) -> None:
        from visionstudy.evaluate.predict import load_predictor
        from visionstudy.serve.export import exported
        from visionstudy.store.reader import holds_runs, read_metrics
        from visionstudy.store.rundir import RunDir, run_place

        self.run = Path(run)
        self.lock = threading.Lock()  # one forward/backward at a time (Grad-CAM needs gradients)
        found = exported(self.run)
        if found is not None:  # a file `export` wrote, beside its JSON: its classes, its run's images
            self.predictor, info = found
            self.name = self.run.name
            self.metrics = {"test_accuracy": info.get("test_accuracy")}
            source = Path(str(info.get("run", "")))
            self.samples = sample_images(source, data_dir) if RunDir(source).is_finished() else []
            return
        self.name = "/".join(run_place(self.run))  # a study's run by its place: quick/baseline/seed-0
        folder = RunDir(self.run)
        if folder.path.is_file():
            raise VisionStudyError(f"{run}: a file, not a run folder nor an export beside its .json; give "
                                   "the run folder, or the exported model with the JSON `export` wrote")
        if not folder.path.is_dir():
            raise VisionStudyError(f"{run}: no such directory")
        if not folder.is_finished():  # a study's folder names its runs, as predict and export do
            raise VisionStudyError(holds_runs(self.run, several=False) or (
                f"{run}: not a finished run (no metrics.json); the demo serves a trained run: "
                "`visionstudy train ...` first"))
        self.predictor = load_predictor(self.run)
        self.metrics = read_metrics(self.run)
        self.samples = sample_images(self.run, data_dir)

    def info(self) -> dict[str, Any]:
        return {"run": self.name, "path": str(self.run),
                "test_accuracy": self.metrics.get("test_accuracy"),
                "classes": self.predictor.class_names, "image_shape": list(self.predictor.image_shape),
                "samples": [{"id": i, "label": label} for i, (_, label) in enumerate(self.samples)]}

    def predict(self, data: bytes) -> dict[str, Any]:
        """Top-k classes and the Grad-CAM overlay of an uploaded file (raises UploadError)."""
        from visionstudy.data.images import ImageReadError, read_image
        from visionstudy.evaluate.predict import classify

        c, h, w = self.predictor.image_shape
        try:
            pixels = np.stack([read_image(io.BytesIO(data), (h, w), c)])  # a writable copy, as predict
        except ImageReadError as exc:
            raise UploadError(400, f"not a readable image ({exc})") from None
        with self.lock:
            top = classify(self.predictor, pixels, ["upload"], TOP_K)[0].top
            overlay = gradcam_png(self.predictor, pixels, top[0][0])
        return {"top": [{"class": name, "p": p} for name, p in top], "gradcam": overlay}


class UploadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def sample_images(run: Path, data_dir: Path | None) -> list[tuple[bytes, str]]:
    """A few test images of the run's dataset as PNG files with their true class; none when the
    dataset is not on this machine (the page then offers upload only)."""
    from PIL import Image

    from visionstudy.report.images import load_data
    from visionstudy.store.reader import load_run

    try:
        data, _ = load_data(load_run(run), data_dir)
    except VisionStudyError:
        return []
    if data is None or not len(data.test):
        return []
    rng = np.random.default_rng(0)
    out = []
    for i in sorted(rng.choice(len(data.test), size=min(SAMPLES, len(data.test)), replace=False)):
        img = data.test.images[i]
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG")
        out.append((buf.getvalue(), data.class_names[int(data.test.labels[i])]))
    return out


def gradcam_png(predictor: Any, pixels: np.ndarray, label: str) -> str | None:
    """The input with the Grad-CAM heat of class `label` over it, 224 px wide, as a data URI."""
    import torch
    from matplotlib import colormaps
    from PIL import Image

    from visionstudy.evaluate.cam import gradcam
    from visionstudy.evaluate.predict import preprocess
    from visionstudy.models import Classifier

    if not isinstance(predictor.model, Classifier):  # an ONNX or TorchScript export: no layers to reach
        return None
    try:
        heat = gradcam(predictor.model, preprocess(predictor, pixels),
                       torch.tensor([predictor.class_names.index(label)]))[0]
    except (RuntimeError, ValueError, VisionStudyError):  # a model without a convolutional layer
        return None
    img = pixels[0].astype(np.float32) / 255
    rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
    alpha = 0.6 * np.clip(heat, 0, 1)[..., None]
    blend = (1 - alpha) * rgb + alpha * colormaps["jet"](heat)[..., :3]
    out = Image.fromarray((np.clip(blend, 0, 1) * 255).astype(np.uint8))
    scale = max(1, 224 // max(out.size))
    out = out.resize((out.width * scale, out.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def create_app(run: Path, data_dir: Path | None = None) -> Any:
    """The Starlette app serving `run`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    demo = Demo(run, data_dir)

    page_html = (Path(__file__).parent / "templates" / "demo.html").read_text()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(page_html.replace("__INFO__", json.dumps(demo.info()).replace("</", "<\\/")))

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(demo.info())

    async def sample(request: Request) -> Response:
        i = request.path_params["i"]
        if not 0 <= i < len(demo.samples):
            return JSONResponse({"error": f"no sample {i}; there are {len(demo.samples)}"},
                                status_code=404)
        return Response(demo.samples[i][0], media_type="image/png")

    async def predict(request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        try:
            data = await read_upload(request)
            return JSONResponse(await run_in_threadpool(demo.predict, data))
        except UploadError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)

    return Starlette(routes=[Route("/", page), Route("/api/info", info), Route("/api/sample/{i:int}", sample),
                             Route("/api/predict", predict, methods=["POST"])])


MAX_BODY = MAX_UPLOAD + 64 * 1024  # the file and its multipart framing


async def bounded_body(request: Any) -> bytes:
    """The request body, refused as soon as it passes MAX_BODY, whether its length was declared
    or not (chunked transfer)."""
    too_big = UploadError(413, f"the upload is over the {MAX_UPLOAD // 2**20} MB limit")
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise UploadError(400, "the Content-Length header is not a number") from None
    if declared > MAX_BODY:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_big
    return bytes(body)


def listen(host: str, port: int) -> Any:
    """The demo's listening socket, bound before anything is printed: a busy port or an address
    that is not this machine's is one clear error."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        hint = ("another program listens there; pass another --port" if exc.errno == errno.EADDRINUSE
                else "pass --host 127.0.0.1 (this machine) or 0.0.0.0 (every interface)")
        raise VisionStudyError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    return sock


async def read_upload(request: Any) -> bytes:
    """The `image` field of a multipart POST, refused above MAX_UPLOAD before it is all read."""
    from starlette.requests import Request

    body = await bounded_body(request)

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=4, max_part_size=MAX_UPLOAD)
    except Exception as exc:  # noqa: BLE001  (multipart's own errors: malformed body, a part too big)
        text = str(exc) or type(exc).__name__
        status = 413 if "size" in text.lower() or "large" in text.lower() else 400
        raise UploadError(status, f"the upload could not be read: {text}") from None
    field = form.get("image")
    if field is None or not hasattr(field, "read"):
        raise UploadError(400, "no file in the multipart field 'image'")
    data = await field.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise UploadError(413, f"the file is over the {MAX_UPLOAD // 2**20} MB limit")
    if not data:
        raise UploadError(400, "the file is empty")
    return data
