"""The browser tests' own helpers, without a browser: REST retries, reading a notebook being saved,
the latency report."""

from __future__ import annotations

import csv
import http.server
import json
import threading
import time

import pytest

from .jupyterlab_process import JupyterLabServer, ServerAPIError
from .notebook_page import LATENCY_COLUMNS, NotebookRun, SliderResult, read_complete_json, write_latency


class _Replies(http.server.BaseHTTPRequestHandler):
    """Answers GET requests with the next (status, body) of the server's ``replies`` list."""

    def do_GET(self):
        status, body = self.server.replies.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server(tmp_path):
    """``(JupyterLabServer pointed at a local HTTP server, its list of replies to give)``."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Replies)
    httpd.replies = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = JupyterLabServer(root_dir=tmp_path, work_dir=tmp_path, log_path=tmp_path / "log", port=httpd.server_port)
    yield server, httpd.replies
    httpd.shutdown()
    httpd.server_close()


def test_api_retries_a_truncated_answer_and_a_server_error(fake_server):
    server, replies = fake_server
    replies += [(200, b'[{"id": "a", "kern'), (503, b""), (200, b'[{"id": "a"}]')]
    assert server.api("GET", "/api/sessions", timeout=5, tries=3) == [{"id": "a"}]
    assert replies == []


def test_api_gives_up_after_its_tries_naming_the_call_and_the_failure(fake_server):
    server, replies = fake_server
    replies += [(200, b"{not json"), (200, b"{not json")]
    with pytest.raises(ServerAPIError, match=r"GET /api/kernels gave no valid answer after 2 tries.*JSONDecodeError"):
        server.api("GET", "/api/kernels", timeout=5, tries=2)


def test_api_does_not_retry_a_client_error(fake_server):
    server, replies = fake_server
    replies += [(404, b""), (200, b"{}")]
    with pytest.raises(ServerAPIError, match="HTTP 404") as error:
        server.api("GET", "/api/sessions/gone", timeout=5, tries=3)
    assert error.value.status == 404 and len(replies) == 1


def test_read_complete_json_waits_for_a_file_being_written(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text('{"cells": [{"sou')

    def finish():
        time.sleep(1.0)
        path.write_text(json.dumps({"cells": []}))

    writer = threading.Thread(target=finish)
    writer.start()
    try:
        assert read_complete_json(path, timeout=20) == {"cells": []}
    finally:
        writer.join()


def test_read_complete_json_names_the_file_when_it_stays_broken(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text('{"cells": [')
    with pytest.raises(RuntimeError, match=r"could not read nb.ipynb as complete JSON within 1 s.*JSONDecodeError"):
        read_complete_json(path, timeout=1)


def test_write_latency_replaces_only_the_rows_of_the_notebook_run_again(tmp_path):
    path = tmp_path / "browser" / "latency.csv"
    first = NotebookRun(
        "02_lab.ipynb",
        sliders=[
            SliderResult(5, 0, "'dt0' (0 -> 0.05)", "ArrowRight", True, 0.4321, 0.3),
            SliderResult(9, 1, "'tau' (3 -> 4)", "ArrowLeft", False, 120.0),
        ],
    )
    other = NotebookRun("01_flow.ipynb", sliders=[SliderResult(15, 0, "'image' (0 -> 1)", "ArrowRight", True, 0.9)])
    write_latency(path, first)
    write_latency(path, other)
    again = NotebookRun("02_lab.ipynb", sliders=[SliderResult(5, 0, "'dt0'", "ArrowRight", True, 0.25, 0.2)])
    write_latency(path, again)
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames) == LATENCY_COLUMNS
        rows = [(r["notebook"], r["cell"], r["control"], r["changed"], r["output_ms"], r["redraw_ms"]) for r in reader]
    assert rows == [
        ("01_flow.ipynb", "15", "'image' (0 -> 1)", "True", "", "900"),
        ("02_lab.ipynb", "5", "'dt0'", "True", "200", "250"),
    ]
