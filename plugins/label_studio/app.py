"""The HTTP side: Label Studio's ML backend protocol as an ASGI (Starlette) app.

    GET  /health, /     -> {"status": "UP", "model_class": ..., "model_version": ...}
    POST /setup         <- {"project": "1.1700000000", "schema": label_config, "hostname", "access_token", ...}
                        -> {"model_version": ...}
    POST /predict       <- {"tasks": [...], "label_config": ..., "project": ..., "params": {"context": ...}}
                        -> {"results": [{"result": [...], "score": ..., "model_version": ...}, ...]}
    POST /webhook       <- {"action": "ANNOTATION_CREATED", "project": {...}, ...}
    GET  /metrics       -> request counts, latencies, engine cache statistics

Errors come back as JSON `{"status": "error", "error": ...}` with 400 (bad input), 401 (auth), 413 (too large),
415, 422 (unusable config) or 500; the server keeps serving. Bodies are bounded before they are parsed: by size
(`max_request_bytes`) and by how deeply they nest (`MAX_JSON_DEPTH`); the fields of a body are checked here, those
of an interactive context in `interactive.py`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import threading
import time
from dataclasses import asdict
from typing import Any

import numpy as np

import litetext

from .config import LabelConfigError
from .fields import MISSING, refuse
from .model import TRAIN_EVENTS, BackendState, LitetextModel
from .settings import BackendSettings

logger = logging.getLogger("litetext.label_studio")

#: How deeply a request body's arrays and objects may nest. Label Studio's bodies nest about 10 deep (a task's
#: annotation's polygon points); Python's json recurses once per level and fails on deep input, so deeper bodies
#: are refused before parsing.
MAX_JSON_DEPTH = 64

# A JSON string, or an unterminated one running to the end: every match attempt at a quote succeeds, so the scan
# stays linear whatever the body holds.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[list(b"[{")], _BRACKET_STEP[list(b"]}")] = 1, -1


def json_depth(body: bytes) -> int:
    """How deeply `body`'s arrays and objects nest, from its brackets outside strings, without parsing it."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    codes = np.frombuffer(brackets, dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(codes), 1 << 20):  # in chunks: a body of brackets makes a few MB of levels, not 100s
        levels = depth + np.cumsum(_BRACKET_STEP[codes[start:start + (1 << 20)]], dtype=np.int64)
        deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


class RequestError(Exception):
    """A request the backend refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Metrics:
    """Counters served at /metrics."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.tasks = 0
        self.failed_tasks = 0
        self.predict_seconds: list[float] = []

    def record(self, route: str, status: int, seconds: float, tasks: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.requests[route] = self.requests.get(route, 0) + 1
            if status >= 400:
                self.errors[route] = self.errors.get(route, 0) + 1
            if route == "/predict" and status < 400:
                self.tasks += tasks
                self.failed_tasks += failed
                self.predict_seconds.append(seconds)
                del self.predict_seconds[:-1000]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            latencies = sorted(self.predict_seconds)

        def percentile(q: float) -> float | None:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3, 2) if latencies else None

        return {"uptime_s": round(time.time() - self.started, 1), "requests": dict(self.requests),
                "errors": dict(self.errors), "tasks_predicted": self.tasks, "tasks_failed": self.failed_tasks,
                "predict_latency_ms": {"p50": percentile(0.5), "p99": percentile(0.99), "count": len(latencies)}}


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a request `body`, or a `RequestError` (400) saying why it cannot be read."""
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise RequestError(400, f"request body nests arrays and objects {depth} deep; the limit is {MAX_JSON_DEPTH}")
    try:
        return json.loads(body or b"null")
    except RecursionError:  # not within MAX_JSON_DEPTH, but never a 500 if it were
        raise RequestError(400, f"request body nests too deeply (the limit is {MAX_JSON_DEPTH})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as problem:
        raise RequestError(400, f"request body is not valid JSON ({problem})") from None
    except ValueError as problem:  # an integer of more than 4,300 digits (sys.get_int_max_str_digits)
        raise RequestError(400, f"request body has a number too long to read ({str(problem).split(':')[0]})"
                           ) from None


def create_app(settings: BackendSettings | None = None, *, engine: Any = None, load_model: bool = True):
    """The ASGI app. `settings` default to the environment; `engine` to `litetext.load(settings.model, ...)`.

    With `load_model` the model loads at start-up, so /health answers UP only once it can predict.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    settings = settings or BackendSettings.from_env()
    state = BackendState(settings, engine)
    metrics = Metrics()

    def error(status: int, message: str, **extra) -> JSONResponse:
        return JSONResponse({"status": "error", "error": message, **extra}, status_code=status)

    async def read_json(request) -> dict[str, Any]:
        if request.method != "POST":
            raise RequestError(405, f"{request.method} is not allowed here; use POST")
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type not in ("application/json", "", "text/plain"):
            raise RequestError(415, f"send JSON (Content-Type: application/json), not {content_type}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            raise RequestError(413, f"request body is {int(declared):,} bytes; the limit is "
                                    f"{settings.max_request_bytes:,} (LITETEXT_MAX_REQUEST_BYTES)")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > settings.max_request_bytes:
                raise RequestError(413, f"request body is larger than the {settings.max_request_bytes:,}-byte limit")
        # Parsed in a worker thread: a body near the limit takes a while, and /health must answer meanwhile.
        data = await run_in_threadpool(parse_json_body, bytes(body))
        if not isinstance(data, dict):
            refuse("request body", "a JSON object", data)
        return data

    def project_id(data: dict[str, Any]) -> str | None:
        project = data.get("project")
        if isinstance(project, dict):
            project = project.get("id")
        return str(project).split(".", 1)[0] if project not in (None, "") else None

    async def health(request):
        return JSONResponse({"status": "UP", "model_class": LitetextModel.__name__,
                             "model_version": LitetextModel(state).model_version, "model": settings.model,
                             "device": state.engine.info.device})

    async def setup(request):
        data = await read_json(request)
        schema = data.get("schema") or data.get("label_config", MISSING)
        if not isinstance(schema, str) or not schema.strip():
            refuse("schema", "the project's labelling config (XML text)", schema)
        for name in ("hostname", "access_token"):  # kept, and used for every later image fetch
            if data.get(name) is not None and not isinstance(data[name], str):
                refuse(name, "a string or null", data[name])
        project = project_id(data)
        state.remember(project, data.get("hostname"), data.get("access_token"))
        model = LitetextModel(state, project, schema)
        await run_in_threadpool(model.setup)
        logger.info("setup for project %s (Label Studio at %s)", project, data.get("hostname") or "unknown")
        return JSONResponse({"model_version": model.model_version})

    async def predict(request):
        started = time.perf_counter()
        data = await read_json(request)
        tasks = data.get("tasks", MISSING)
        if not isinstance(tasks, list):
            refuse("tasks", "a list of task objects", tasks)
        for index, task in enumerate(tasks):
            if not isinstance(task, dict):
                refuse(f"tasks[{index}]", "a task object", task)
            task_id = task.get("id")  # echoed in the answer's errors
            if task_id is not None and (isinstance(task_id, bool) or not isinstance(task_id, (int, str))):
                refuse(f"tasks[{index}].id", "an integer or a string", task_id)
        label_config = data.get("label_config", MISSING)
        if not isinstance(label_config, str) or not label_config.strip():
            refuse("label_config", "the project's labelling config (XML text)", label_config)
        params = data.get("params")
        if params is not None and not isinstance(params, dict):
            refuse("params", "a JSON object or null", params)
        context = (params or {}).get("context")  # checked by the model (interactive.py); None: automatic
        model = LitetextModel(state, project_id(data), label_config)
        response = await run_in_threadpool(model.predict, tasks, context=context)
        metrics.record("/predict", 200, time.perf_counter() - started, len(tasks), len(response["errors"]))
        return JSONResponse(response)

    async def webhook(request):
        data = await read_json(request)
        event = data.get("action")
        if event is not None and not isinstance(event, str):
            refuse("action", "the webhook event's name (a string)", event)
        if event not in TRAIN_EVENTS:
            return JSONResponse({"status": "Unknown event", "event": event})
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        model = LitetextModel(state, project_id(data), project.get("label_config"))
        return JSONResponse({"status": "ok", "result": model.fit(event, data)}, status_code=201)

    async def metrics_route(request):
        engine = state.engine
        cache = asdict(engine.image_cache.stats())
        return JSONResponse({**metrics.snapshot(), "model_version": LitetextModel(state).model_version,
                             "engine": {"model": engine.info.model, "device": engine.info.device,
                                        "dtype": engine.info.dtype, "image_cache": cache}})

    def refused(route: str, status: int, problem: Exception) -> JSONResponse:
        # Logged as well: Label Studio 1.2x shows only "400 Client Error" for a 4xx, not the message.
        logger.warning("%s refused (%d): %s", route, status, problem)
        return error(status, str(problem))

    def guarded(handler, route: str):
        async def endpoint(request):
            started = time.perf_counter()
            try:
                response = await handler(request)
            except RequestError as problem:
                response = refused(route, problem.status, problem)
            except LabelConfigError as problem:
                response = refused(route, 422, problem)
            except litetext.LitetextError as problem:
                response = refused(route, 400, problem)
            except Exception as problem:  # keep serving whatever happens
                logger.exception("%s failed", route)
                response = error(500, f"internal error: {type(problem).__name__}: {problem}")
            if route != "/predict" or response.status_code >= 400:
                metrics.record(route, response.status_code, time.perf_counter() - started)
            return response

        return endpoint

    routes = [
        Route("/", guarded(health, "/health"), methods=["GET"]),
        Route("/health", guarded(health, "/health"), methods=["GET"]),
        Route("/setup", guarded(setup, "/setup"), methods=["POST"]),
        Route("/predict", guarded(predict, "/predict"), methods=["POST"]),
        Route("/webhook", guarded(webhook, "/webhook"), methods=["POST"]),
        Route("/metrics", guarded(metrics_route, "/metrics"), methods=["GET"]),
    ]

    async def not_found(request, exc):
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    def lifespan(app):
        return _Lifespan(state, load_model)

    middleware = []
    if settings.basic_auth_user and settings.basic_auth_pass:
        middleware.append(Middleware(BasicAuthMiddleware, user=settings.basic_auth_user,
                                     password=settings.basic_auth_pass))
    from starlette.exceptions import HTTPException

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: not_found})
    app.state.backend = state
    return app


class _Lifespan:
    def __init__(self, state: BackendState, load_model: bool):
        self.state, self.load_model = state, load_model

    async def __aenter__(self):
        import anyio.to_thread

        # THREADS: how many requests may run model work (or image downloads) at once in this process.
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.state.settings.threads
        if self.load_model:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(lambda: self.state.engine)
            logger.info("litetext model ready: %s", self.state.engine.info)

    async def __aexit__(self, *exc):
        self.state.close()


class BasicAuthMiddleware:
    """HTTP basic auth on every route (constant-time comparison), as BASIC_AUTH_USER/BASIC_AUTH_PASS set."""

    def __init__(self, app, *, user: str, password: str):
        self.app, self.user, self.password = app, user.encode(), password.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        from starlette.responses import JSONResponse

        response = JSONResponse({"status": "error", "error": "authentication required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="litetext"'})
        await response(scope, receive, send)

    def _allowed(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(user, self.user) & hmac.compare_digest(password, self.password)
