"""The HTTP side: Label Studio's ML backend protocol as an ASGI (Starlette) app.

    GET  /health, /     -> {"status": "UP", "model_class": ..., "model_version": ...}
    POST /setup         <- {"project": "1.1700000000", "schema": label_config, "hostname", "access_token", ...}
                        -> {"model_version": ...}
    POST /predict       <- {"tasks": [...], "label_config": ..., "project": ..., "params": {"context": ...}}
                        -> {"results": [{"result": [...], "score": ..., "model_version": ...}, ...]}
    POST /webhook       <- {"action": "ANNOTATION_CREATED", "project": {...}, ...}
    GET  /metrics       -> request counts, latencies, engine cache statistics

Errors come back as JSON `{"status": "error", "error": ...}` with 400 (bad input), 401 (auth), 413 (too large),
415, 422 (unusable config) or 500; the server keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
from dataclasses import asdict
from typing import Any

import litetext

from .config import LabelConfigError
from .model import TRAIN_EVENTS, BackendState, LitetextModel
from .settings import BackendSettings

logger = logging.getLogger("litetext.label_studio")


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
        try:
            data = json.loads(bytes(body) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as problem:
            raise RequestError(400, f"request body is not valid JSON ({problem})") from None
        if not isinstance(data, dict):
            raise RequestError(400, f"request body must be a JSON object, not {type(data).__name__}")
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
        schema = data.get("schema") or data.get("label_config")
        if not isinstance(schema, str) or not schema.strip():
            raise RequestError(400, "setup needs the labelling config in 'schema'")
        project = project_id(data)
        state.remember(project, data.get("hostname"), data.get("access_token"))
        model = LitetextModel(state, project, schema)
        await run_in_threadpool(model.setup)
        logger.info("setup for project %s (Label Studio at %s)", project, data.get("hostname") or "unknown")
        return JSONResponse({"model_version": model.model_version})

    async def predict(request):
        started = time.perf_counter()
        data = await read_json(request)
        tasks = data.get("tasks")
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise RequestError(400, "'tasks' must be a list of task objects")
        label_config = data.get("label_config")
        if not isinstance(label_config, str) or not label_config.strip():
            raise RequestError(400, "'label_config' (the project's labelling config) is missing")
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        context = params.get("context")
        model = LitetextModel(state, project_id(data), label_config)
        response = await run_in_threadpool(model.predict, tasks, context=context)
        metrics.record("/predict", 200, time.perf_counter() - started, len(tasks), len(response["errors"]))
        return JSONResponse(response)

    async def webhook(request):
        data = await read_json(request)
        event = data.get("action")
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

    def guarded(handler, route: str):
        async def endpoint(request):
            started = time.perf_counter()
            try:
                response = await handler(request)
            except RequestError as problem:
                response = error(problem.status, str(problem))
            except LabelConfigError as problem:
                response = error(422, str(problem))
            except litetext.LitetextError as problem:
                response = error(400, str(problem))
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
