"""The real `openai` client over an in-process gateway (a Starlette TestClient).

openai-python takes an `httpx.Client`; Starlette's TestClient is built on `httpx2`, a fork, so
it cannot be handed over as it is. `openai_client` gives openai an httpx client whose transport
sends each request through the TestClient: the openai package's own request building and
response parsing run unchanged, in front of the real app."""

import httpx
import openai


class ThroughTestClient(httpx.BaseTransport):
    def __init__(self, client) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method,
            str(request.url),
            headers=[(k.decode(), v.decode()) for k, v in request.headers.raw],
            content=request.read(),
        )
        return httpx.Response(
            answer.status_code,
            headers=[(k.decode(), v.decode()) for k, v in answer.headers.raw],
            content=answer.content,
        )


def openai_client(client, key: str) -> openai.OpenAI:
    """An openai.OpenAI calling the TestClient `client`'s app with API key `key`."""
    transport = httpx.Client(transport=ThroughTestClient(client))
    return openai.OpenAI(
        base_url=f"{client.base_url}/v1", api_key=key, http_client=transport, max_retries=0
    )
