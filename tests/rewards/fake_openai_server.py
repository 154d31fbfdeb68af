"""A FAKE OpenAI-compatible server (stdlib ``http.server``), for client-side tests only.

It is not vLLM: it answers ``/v1/models`` and ``/v1/chat/completions`` with a scripted reply
(``answer(body) -> str``), after ``delay`` seconds, failing the first ``fail_first`` requests with
HTTP 503. It records how many requests arrived and how many were in flight at once. The real
server is exercised in test_reward_model_vllm.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def first_choice(body: dict) -> str:
    return body.get("structured_outputs", {}).get("choice", ["?"])[0]


class FakeOpenAIServer:
    def __init__(self, answer: Callable[[dict], str] = first_choice, delay: float = 0.0, fail_first: int = 0):
        self.answer, self.delay, self.fail_first = answer, delay, fail_first
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "fake-judge", "object": "model"}]})
                else:
                    self._send(200 if self.path == "/health" else 404, {})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    n = len(fake.requests)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    time.sleep(fake.delay)
                    if n <= fake.fail_first:
                        self._send(503, {"error": "warming up"})
                        return
                    text = fake.answer(body)
                    self._send(
                        200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
                    )
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
