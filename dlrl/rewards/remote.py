"""Reward models behind an OpenAI-compatible server (vLLM): settings, start check, batched client.

The reward side needs only HTTP, so this module is stdlib-only (``urllib`` + threads) and the
server runs in its own environment, on its own GPUs or node (``dlrl serve-reward-model``).

* :class:`RewardModelSpec` — the recipe section ``reward_model:`` (endpoint, model, concurrency,
  timeout, retries). :func:`configure` exports it as ``DLRL_REWARD_MODEL_*`` environment
  variables, so reward functions (and any process they run in) read the same settings.
* :func:`check_endpoint` — the start-of-run check: an unreachable endpoint or an unserved model
  is a ``ConfigError`` (one line, exit 2) raised before any policy model loads.
* :class:`ChatClient` — ``chat_many`` sends a batch of chat requests, ``concurrency`` in flight
  at a time (the server batches them: continuous batching), identical requests deduplicated,
  each attempt bounded by ``timeout`` seconds and retried ``max_retries`` times on connection
  errors, timeouts and 5xx. A request that still fails is a ``Reply(ok=False)``, never an
  exception and never a made-up value: the reward turns it into ``None`` and counts it. Once a
  request has exhausted its retries on a refused/reset connection (a dead server), the rest of
  that batch fails at once instead of each retrying; the next batch tries again.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dlrl.errors import ConfigError

ENV_PREFIX = "DLRL_REWARD_MODEL_"
#: The attribute that marks a reward function as served by a reward model (start check, in-process).
REWARD_MODEL_ATTR = "dlrl_reward_model"


@dataclass
class RewardModelSpec:
    """``reward_model:`` — where the verifier/judge model is served and how hard to push it.

    ``concurrency`` is per process: under ``accelerate launch`` every rank sends its own
    completions, so the server sees up to ``num_processes × concurrency`` requests at once.
    ``timeout`` bounds one attempt; a request costs at most ``(max_retries + 1) × timeout``
    plus back-off before it is a counted failure.
    """

    endpoint: str = "http://127.0.0.1:8000/v1"
    model: str | None = None  # None: the server's only model (GET /v1/models)
    concurrency: int = 16
    timeout: float = 30.0
    max_retries: int = 2
    check_timeout: float = 10.0  # the start-of-run reachability check

    def __post_init__(self) -> None:
        self.endpoint = normalize_endpoint(self.endpoint)
        if int(self.concurrency) < 1:
            raise ConfigError(f"reward_model.concurrency must be >= 1, got {self.concurrency}")
        if float(self.timeout) <= 0:
            raise ConfigError(f"reward_model.timeout must be > 0 seconds, got {self.timeout}")
        if int(self.max_retries) < 0:
            raise ConfigError(f"reward_model.max_retries must be >= 0, got {self.max_retries}")


def normalize_endpoint(url: str) -> str:
    """``host:port`` / ``http://host:port`` / ``…/v1/`` → ``http://host:port/v1``."""
    url = str(url).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url if url.endswith("/v1") else url + "/v1"


def configure(spec: RewardModelSpec) -> None:
    """Export ``spec`` for reward functions in this process and the processes it starts."""
    for f in fields(spec):
        value = getattr(spec, f.name)
        key = ENV_PREFIX + f.name.upper()
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)


def settings(**overrides: Any) -> RewardModelSpec:
    """The effective settings: explicit ``overrides`` (not None) > ``DLRL_REWARD_MODEL_*`` > defaults."""
    values: dict[str, Any] = {}
    for f in fields(RewardModelSpec):
        env = os.environ.get(ENV_PREFIX + f.name.upper())
        if env is not None and env != "":
            values[f.name] = env if f.name in ("endpoint", "model") else float(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name in ("concurrency", "max_retries"):
        if name in values:
            values[name] = int(values[name])
    return RewardModelSpec(**values)


# --- HTTP ----------------------------------------------------------------------------------------
class _HTTPFailure(Exception):
    def __init__(self, message: str, retry: bool, timed_out: bool = False) -> None:
        super().__init__(message)
        self.retry, self.timed_out = retry, timed_out


def _http(method: str, url: str, body: dict | None, timeout: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    api_key = os.environ.get("DLRL_REWARD_MODEL_API_KEY")  # the server's --api-key, if it has one
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode() or "null")
    except urllib.error.HTTPError as err:  # the server answered: 5xx may pass, 4xx will not
        detail = err.read().decode(errors="replace")[:200].replace("\n", " ")
        raise _HTTPFailure(f"HTTP {err.code}: {detail}", retry=err.code >= 500 or err.code == 429) from None
    except TimeoutError:
        raise _HTTPFailure(f"timed out after {timeout:g}s", retry=True, timed_out=True) from None
    except urllib.error.URLError as err:
        timed_out = isinstance(err.reason, TimeoutError)
        why = f"timed out after {timeout:g}s" if timed_out else f"connection failed ({err.reason})"
        raise _HTTPFailure(why, retry=True, timed_out=timed_out) from None
    except (ConnectionError, OSError, http.client.HTTPException) as err:  # reset mid-response (killed server)
        raise _HTTPFailure(f"connection failed ({type(err).__name__}: {err})", retry=True) from None
    except ValueError as err:  # not JSON
        raise _HTTPFailure(f"bad response ({err})", retry=False) from None


def served_models(endpoint: str, timeout: float) -> list[str]:
    """Model ids the server lists at ``GET {endpoint}/models``; raises ``ConfigError`` if unreachable."""
    try:
        data = _http("GET", normalize_endpoint(endpoint) + "/models", None, timeout)
    except _HTTPFailure as err:
        raise ConfigError(
            f"reward_model.endpoint {normalize_endpoint(endpoint)} is not reachable: {err} "
            "(start it with `dlrl serve-reward-model MODEL`, see docs/rewards.md)"
        ) from None
    return [m.get("id") for m in (data or {}).get("data", []) if isinstance(m, dict)]


def check_endpoint(spec: RewardModelSpec) -> str:
    """The start-of-run check: the endpoint answers and serves ``spec.model``. Returns the model id."""
    models = served_models(spec.endpoint, spec.check_timeout)
    if spec.model is None:
        if len(models) != 1:
            raise ConfigError(
                f"reward_model.model is not set and {spec.endpoint} serves {len(models)} models "
                f"({', '.join(models) or 'none'}); name one"
            )
        return models[0]
    if spec.model not in models:
        raise ConfigError(
            f"reward_model.model {spec.model!r} is not served at {spec.endpoint}; served: {', '.join(models) or 'none'}"
        )
    return spec.model


# --- batched chat client ---------------------------------------------------------------------------
@dataclass
class Reply:
    """One request's outcome: ``text`` when ``ok``, else ``error`` (after ``attempts`` tries)."""

    ok: bool
    text: str | None = None
    error: str | None = None
    attempts: int = 0
    timed_out: bool = False


@dataclass
class BatchStats:
    """What one ``chat_many`` call did (rewards report these as metrics)."""

    items: int = 0
    requests: int = 0  # unique requests after deduplication
    failures: int = 0
    timeouts: int = 0
    retries: int = 0
    max_in_flight: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class ChatClient:
    """Concurrent ``POST /v1/chat/completions`` with timeout and retry; see the module docstring."""

    def __init__(self, spec: RewardModelSpec, backoff: float = 0.5) -> None:
        self.spec, self.backoff = spec, backoff
        self._model: str | None = spec.model
        self._lock = threading.Lock()
        self._in_flight = 0
        self.completed = 0  # replies received over the client's life (tests watch it mid-batch)
        self.last_stats = BatchStats()

    @property
    def model(self) -> str:
        if self._model is None:
            self._model = check_endpoint(self.spec)
        return self._model

    def _post(self, body: dict, down: threading.Event | None = None) -> Reply:
        attempts, retries = 0, 0
        while True:
            if down is not None and down.is_set():  # the endpoint died earlier in this batch
                return Reply(
                    False, error="skipped: the endpoint refused an earlier request", attempts=attempts
                )
            attempts += 1
            with self._lock:
                self._in_flight += 1
                self.last_stats.max_in_flight = max(self.last_stats.max_in_flight, self._in_flight)
            try:
                data = _http("POST", self.spec.endpoint + "/chat/completions", body, self.spec.timeout)
                text = data["choices"][0]["message"]["content"]
                with self._lock:
                    self.completed += 1
                return Reply(True, text=text if isinstance(text, str) else "", attempts=attempts)
            except _HTTPFailure as err:
                if not err.retry or retries >= self.spec.max_retries:
                    if down is not None and str(err).startswith("connection failed"):
                        down.set()  # fail the rest of the batch fast instead of retrying each
                    return Reply(False, error=str(err), attempts=attempts, timed_out=err.timed_out)
                retries += 1
            except (KeyError, IndexError, TypeError) as err:
                return Reply(False, error=f"unexpected response shape ({err!r})", attempts=attempts)
            finally:
                with self._lock:
                    self._in_flight -= 1
            time.sleep(min(self.backoff * 2 ** (retries - 1), 8.0))

    def chat_many(self, requests: list[dict]) -> list[Reply]:
        """``requests[i]``: a dict with ``messages`` plus sampling fields (``max_tokens``,
        ``structured_outputs``, ...); ``model`` is filled in. One ``Reply`` per request, in order."""
        t0 = time.perf_counter()
        self.last_stats = stats = BatchStats(items=len(requests))
        if not requests:
            return []
        try:
            model = self.model
        except ConfigError as err:  # the server went away after the start check
            stats.failures = stats.requests = len(requests)
            stats.errors = [str(err)]
            return [Reply(False, error=str(err)) for _ in requests]
        keys = [json.dumps(r, sort_keys=True) for r in requests]
        unique = list(dict.fromkeys(keys))
        stats.requests = len(unique)
        bodies = [{"model": model, **json.loads(k)} for k in unique]
        down = threading.Event()
        with ThreadPoolExecutor(max_workers=min(self.spec.concurrency, len(bodies))) as pool:
            replies = dict(zip(unique, pool.map(lambda b: self._post(b, down), bodies)))
        for r in replies.values():
            stats.retries += r.attempts - 1 if r.attempts else 0
            if not r.ok:
                stats.failures += 1
                stats.timeouts += r.timed_out
                if len(stats.errors) < 3:
                    stats.errors.append(r.error or "failed")
        stats.seconds = time.perf_counter() - t0
        return [replies[k] for k in keys]


_clients: dict[tuple, ChatClient] = {}
_clients_lock = threading.Lock()


def client_for(spec: RewardModelSpec) -> ChatClient:
    """One client per distinct settings in this process (keeps the resolved model id)."""
    key = tuple(asdict(spec).items())
    with _clients_lock:
        if key not in _clients:
            _clients[key] = ChatClient(spec)
        return _clients[key]


def mark_reward_model_function(fn: Any) -> Any:
    """Decorator: the reward talks to a reward-model server. The scorer runs it in-process (it is
    I/O-bound, bounds its own time, and reports metrics), and the start check covers its endpoint."""
    setattr(fn, REWARD_MODEL_ATTR, True)
    return fn


def uses_reward_model(fn: Any) -> bool:
    """True for a function marked by :func:`mark_reward_model_function` (or a partial of one)."""
    while fn is not None:
        if getattr(fn, REWARD_MODEL_ATTR, False):
            return True
        fn = getattr(fn, "func", None)
    return False


def constrained_choice(
    messages: list[list[dict]], choices: list[str], max_tokens: int = 8, **overrides: Any
) -> tuple[list[str | None], BatchStats, RewardModelSpec]:
    """Ask the reward model each conversation in ``messages``; its reply is constrained to one of
    ``choices`` (vLLM structured outputs, so even a random-weight model answers in the set).

    Returns ``(answers, stats, spec)``: ``answers[i]`` is the chosen string, or None when the
    request failed or (a server without structured outputs) the reply is not one of ``choices``;
    every None is counted in ``stats.failures``.
    """
    spec = settings(**overrides)
    client = client_for(spec)
    requests = [
        {"messages": m, "max_tokens": max_tokens, "temperature": 0.0,
         "structured_outputs": {"choice": list(choices)}}
        for m in messages
    ]  # fmt: skip
    replies = client.chat_many(requests)
    stats = client.last_stats
    lookup = {c.strip().lower(): c for c in choices}
    answers: list[str | None] = []
    for r in replies:
        answer = lookup.get((r.text or "").strip().lower()) if r.ok else None
        if r.ok and answer is None:
            stats.failures += 1
            if len(stats.errors) < 3:
                stats.errors.append(f"reply {r.text!r} is not one of {list(choices)}")
        answers.append(answer)
    return answers, stats, spec


def prompt_text(prompt: Any) -> str:
    """The task text of a prompt: the string itself, or a conversation's last user message."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            content = users[-1]
            if isinstance(content, list):
                return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
            return str(content)
    return "" if prompt is None else str(prompt)
