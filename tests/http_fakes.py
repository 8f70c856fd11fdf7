"""Fakes over real HTTP, for what a real SGLang server cannot be made to do on demand (hang,
die, answer garbage): a request handler that answers JSON and keeps the test output quiet."""

import http.server


class JsonHandler(http.server.BaseHTTPRequestHandler):
    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass
