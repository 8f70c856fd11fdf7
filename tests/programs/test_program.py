"""The frontend endpoint tells a server's failure (retry) from a refusal of the document, and
never waits without end.

A real SGLang server cannot be made to answer 500 on demand, so these use a minimal HTTP server
that answers with a chosen status; everything else in the suite talks to real SGLang.
"""

import http.server
import threading
import time

import pytest
from http_fakes import JsonHandler

from forkpoint.programs.program import Endpoint, ServerError, connect, run_warm
from forkpoint.runtime.client import RuntimeClient, Timeouts


class _Answers(JsonHandler):
    status = 200
    delay = 0.0  # seconds before answering a POST: a runtime stuck in a long step

    def do_GET(self):  # /model_info, asked once by the endpoint
        self._reply(200, b'{"model_path": "m"}')

    def do_POST(self):
        time.sleep(type(self).delay)
        self._reply(type(self).status, b'{"error": "boom"}')


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


@pytest.mark.parametrize(
    ("status", "error"), [(500, ServerError), (503, ServerError), (400, RuntimeError)]
)
def test_a_5xx_is_a_retryable_server_error_and_a_4xx_is_the_documents_own(server, status, error):
    _Answers.status, _Answers.delay = status, 0.0
    endpoint = connect(f"http://127.0.0.1:{server.server_port}")
    with pytest.raises(error) as raised:
        run_warm(endpoint, "hello")
    assert isinstance(raised.value, OSError) == (status >= 500)


def test_a_generate_call_that_gets_no_answer_ends_at_its_timeout_as_a_server_error(server):
    _Answers.status, _Answers.delay = 200, 3.0
    url = f"http://127.0.0.1:{server.server_port}"
    client = RuntimeClient(url, timeouts=Timeouts(generate=0.5))
    started = time.perf_counter()
    with pytest.raises(ServerError, match="did not answer /generate"):
        run_warm(Endpoint(client), "hello")
    assert time.perf_counter() - started < 2.5
