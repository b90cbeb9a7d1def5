"""`visionstudy demo`: the page in headless Chromium (Playwright) against `visionstudy predict`."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, assert_user_error, chromium, vs, vs_here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(digits_run):
    port = free_port()
    cmd = [sys.executable, "-m", "visionstudy", "demo", str(digits_run), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/api/info", timeout=2) as r:
                info = json.loads(r.read())
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"the demo did not start: {proc.communicate()[1][-2000:]}") from None
            time.sleep(0.3)
    yield url, info
    proc.terminate()
    proc.wait(timeout=20)


def test_a_study_run_is_named_by_its_place_in_the_study(digits_run, tmp_path):
    """The page named a study's run "seed-0", as every other run of the study."""
    from visionstudy.serve.demo import Demo

    run = tmp_path / "quick" / "both+augment" / "seed-1"
    shutil.copytree(digits_run, run)
    (tmp_path / "quick" / "manifest.json").write_text("{}")
    assert Demo(run).info()["run"] == "quick/both+augment/seed-1"


def test_an_exported_model_is_served_as_its_run_is(digits_run, tmp_path):
    """`demo exports/x.onnx` said "no such directory": predict took an export, the demo did not. It
    serves the file's classes, its run's test images and accuracy; Grad-CAM where the model's layers
    are there (safetensors rebuilds them; a TorchScript or ONNX graph hides them)."""
    from visionstudy.serve.demo import Demo
    from visionstudy.serve.export import export_run

    upload = io.BytesIO()
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(upload, format="PNG")
    expected = Demo(digits_run).predict(upload.getvalue())
    for fmt, gradcam in (("torchscript", False), ("safetensors", True)):
        done = export_run(digits_run, fmt, tmp_path / f"m.{fmt}")
        demo = Demo(done.path)
        info = demo.info()
        assert info["run"] == f"m.{fmt}" and info["classes"] == [str(i) for i in range(10)]
        assert info["test_accuracy"] == json.loads((digits_run / "metrics.json").read_text())["test_accuracy"]
        assert len(info["samples"]) == 8  # the run's own test images
        got = demo.predict(upload.getvalue())
        assert [t["class"] for t in got["top"]] == [t["class"] for t in expected["top"]]
        assert (got["gradcam"] is not None) == gradcam
    (tmp_path / "notes.txt").write_text("mine")
    assert_user_error(vs_here("demo", tmp_path / "notes.txt"), "notes.txt: a file, not a run folder nor an "
                      "export beside its .json")


def test_info_names_the_run_and_offers_test_images(server, digits_run):
    url, info = server
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert info["run"] == digits_run.name and info["test_accuracy"] == metrics["test_accuracy"]
    assert info["classes"] == metrics["class_names"] and len(info["samples"]) == 8
    with urllib.request.urlopen(url + "/api/sample/0") as r:
        assert r.headers["content-type"] == "image/png" and Image.open(io.BytesIO(r.read())).size == (8, 8)


def test_the_page_shows_what_predict_says_and_survives_bad_uploads(server, digits_run, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _ = server
    from visionstudy.config import DataConfig
    from visionstudy.data import prepare

    test = prepare(DataConfig(dataset="digits")).test
    image = tmp_path / "digit.png"
    Image.fromarray(test.images[7][..., 0]).save(image)
    cli = vs("predict", digits_run, image, "--json", "--top-k", "5")
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)[0]["top"]

    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    bomb = tmp_path / "bomb.png"  # 10,000 × 10,000 pixels in 15 kB: refused before decoding
    Image.new("1", (10_000, 10_000)).save(bomb)
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG" + bytes(50 * 2**20))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        assert page.locator("#run").inner_text() == digits_run.name
        assert page.locator("#samples img").count() == 8

        def upload(path: Path) -> None:
            with page.expect_response("**/api/predict") as response:
                page.locator("#file").set_input_files(str(path))
            response.value.finished()
            page.wait_for_timeout(100)  # the page's script renders the answer

        upload(image)
        shown = page.locator("#top tr").first.locator(".cls").inner_text()
        probability = page.locator("#top tr").first.locator(".p").inner_text()
        assert shown == expected[0]["class"] and probability == f"{100 * expected[0]['probability']:.1f}%"
        assert page.locator("#top tr").count() == 5
        assert page.locator("#cam").get_attribute("src").startswith("data:image/png;base64,")

        for bad, status, words in ((text, 400, "not a readable image"), (bomb, 400, "pixels"),
                                   (huge, 413, "limit")):
            upload(bad)
            message = page.locator("#error").inner_text()
            assert message.startswith(f"Error {status}:") and words in message, message
            assert page.locator("#top tr").count() == 0

        upload(image)  # still serving, and still right
        assert page.locator("#top tr").first.locator(".cls").inner_text() == expected[0]["class"]
        assert page.locator("#error").inner_text() == ""

        page.locator("#samples img").first.click()  # a test image from the page itself
        page.locator("#top tr").first.wait_for()
        assert errors == []
        browser.close()


def test_the_endpoint_answers_json_with_the_reason(server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    with sync_playwright() as p:
        api = p.request.new_context()
        ok = api.post(url + "/api/predict", multipart={"image": {"name": "x.png", "mimeType": "image/png",
                                                                  "buffer": buf.getvalue()}})
        body = ok.json()
        assert ok.status == 200 and len(body["top"]) == 5 and sum(t["p"] for t in body["top"]) <= 1 + 1e-6
        missing = api.post(url + "/api/predict", multipart={"other": "x"})
        assert missing.status == 400 and "field 'image'" in missing.json()["error"]
        empty = api.post(url + "/api/predict", multipart={"image": {"name": "e.png", "mimeType": "image/png",
                                                                     "buffer": b""}})
        assert empty.status == 400 and "empty" in empty.json()["error"]
        junk = api.post(url + "/api/predict", multipart={"image": {"name": "j.png", "mimeType": "image/png",
                                                                    "buffer": b"not an image"}})
        assert junk.status == 400 and "not a format PIL can decode" in junk.json()["error"]
        assert "object at 0x" not in junk.json()["error"]  # once: <_io.BytesIO object at 0x...>
        api.dispose()


def test_a_run_that_is_not_finished_is_refused_before_serving(tmp_path):
    result = vs("demo", tmp_path, "--port", str(free_port()))
    assert result.returncode == 2 and "not a finished run" in result.stderr
    assert "Traceback" not in result.stderr
    # a study's folder names its runs, as predict and export do (it said "`visionstudy train` first")
    study = tmp_path / "s"
    for key in ("bn/seed-0", "bn/seed-1"):
        (study / key / "checkpoints").mkdir(parents=True)
    (study / "manifest.json").write_text('{"runs": [{"key": "bn/seed-0"}, {"key": "bn/seed-1"}]}')
    for folder in (study, study / "bn"):
        assert_user_error(vs_here("demo", folder), "but it holds 2 runs", f"{folder}/bn/seed-0"
                          if folder == study else f"{folder}/seed-0", "pass one of them")
    assert_user_error(vs_here("demo", tmp_path / "nope"), "nope: no such directory")


def test_a_chunked_upload_is_cut_at_the_limit_while_it_streams(server):
    """No Content-Length: the server counts the chunks and answers 413 long before the 200 MB the
    client would send (it once spooled everything to /tmp first)."""
    import select

    host, port = server[0].removeprefix("http://").split(":")
    sent, answer, reset = 0, b"", False
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        head = b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.bin\"\r\n\r\n"
        s.sendall(b"%x\r\n" % len(head) + head + b"\r\n")
        chunk = b"%x\r\n" % 2**20 + b"\0" * 2**20 + b"\r\n"
        try:
            while sent < 200 * 2**20 and not answer:
                s.sendall(chunk)
                sent += 2**20
                if select.select([s], [], [], 0)[0]:
                    answer = s.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            reset = True  # the server answered and closed; the kernel may drop its answer with the RST
    assert sent < 40 * 2**20, f"sent {sent / 2**20:.0f} MB before the server stopped reading"
    assert reset or answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_huge_transparent_png_is_classified_while_the_server_keeps_answering(server):
    """A 6144² RGBA PNG (under 1 MB) decodes in bounded memory in a worker thread: the upload gets
    its classes (it once got a 500 and a MemoryError traceback) and /api/info answers meanwhile."""
    import threading

    url, _ = server
    side = 6144
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[::5, :, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=9)
    assert len(buf.getvalue()) < 2**20
    body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"huge.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + buf.getvalue() + b"\r\n--b--\r\n")
    done: dict = {}

    def upload() -> None:
        req = urllib.request.Request(url + "/api/predict", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b"})
        with urllib.request.urlopen(req, timeout=300) as r:
            done["predict"] = (time.monotonic(), json.loads(r.read()))

    worker = threading.Thread(target=upload)
    worker.start()
    time.sleep(0.3)  # the upload is in; its decoding has begun
    with urllib.request.urlopen(url + "/api/info", timeout=300) as r:
        info_at = time.monotonic()
        assert json.loads(r.read())["run"]
    worker.join(timeout=300)
    at, answer = done["predict"]
    assert len(answer["top"]) == 5 and answer["gradcam"].startswith("data:image/png")
    assert info_at < at, "/api/info waited for the decoding"


def test_a_busy_port_is_one_clear_error_before_any_address_is_printed(digits_run):
    """It once printed the serving URL, then uvicorn's error, and exited 3."""
    from tests.helpers import assert_user_error

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = vs("demo", digits_run, "--port", port)
    assert_user_error(result, f"cannot serve on 127.0.0.1:{port}", "pass another --port")
    assert "http://" not in result.stdout


def test_the_demo_without_its_extra_names_the_install_command(digits_run, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert_user_error(vs_here("demo", digits_run), "the demo needs its extra", "visionstudy[demo]")
