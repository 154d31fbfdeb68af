"""Call the candidate's code from a separate judge process (stdlib only).

Why: if tests run in the candidate's own interpreter, the candidate can rewrite them
(read the harness frame, ``settrace`` past the check, patch builtins, return an object
whose ``__eq__`` is always True). So the sandbox runs two processes: the *candidate*
executes the model's code and serves calls; the *judge* executes the tests, with every
top-level name of the candidate replaced by a :class:`Remote` stub. Only plain data
crosses the pipe (None, bool, int, float, complex, str, bytes, list, tuple, set,
frozenset, dict); anything else stays in the candidate as a handle that the judge can
only call, index, iterate or take attributes of. The judge compares values it decoded
itself, so a candidate can change what its functions return, never how they are judged.

Framing: 4-byte big-endian length + JSON. Values are tagged: ``{"l": [...]}`` list,
``{"t": ...}`` tuple, ``{"s": ...}`` set, ``{"fs": ...}`` frozenset, ``{"d": [[k, v], ...]}``,
``{"b": hex}`` bytes, ``{"c": [re, im]}`` complex, ``{"h": id}`` handle.
"""

import builtins
import json
import os
import struct
import sys
import types

MAX_MESSAGE = 8 << 20  # bytes; a longer reply is treated as an error, not read


class RemoteError(Exception):
    """The candidate raised an exception the judge has no builtin type for, or broke the protocol."""


def send(fd, obj):
    data = json.dumps(obj, allow_nan=True).encode()
    msg = struct.pack(">I", len(data)) + data
    view = memoryview(msg)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd, n):
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(fd):
    (n,) = struct.unpack(">I", _read_exact(fd, 4))
    if n > MAX_MESSAGE:
        raise RemoteError(f"message of {n} bytes exceeds {MAX_MESSAGE}")
    return json.loads(_read_exact(fd, n).decode())


# ---- candidate side -------------------------------------------------------------------


def encode(v, handles, depth=0):
    """Plain data by value; anything else registered in ``handles`` and sent as a handle."""
    if depth > 200:
        raise ValueError("value nested too deeply")
    if v is None:
        return None
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, complex):
        return {"c": [v.real, v.imag]}
    if isinstance(v, (bytes, bytearray)):
        return {"b": bytes(v).hex()}
    sub = lambda xs: [encode(x, handles, depth + 1) for x in xs]  # noqa: E731
    if isinstance(v, list):
        return {"l": sub(v)}
    if isinstance(v, tuple):
        return {"t": sub(v)}
    if isinstance(v, frozenset):
        return {"fs": sub(v)}
    if isinstance(v, set):
        return {"s": sub(v)}
    if isinstance(v, dict):
        return {"d": [[encode(k, handles, depth + 1), encode(x, handles, depth + 1)] for k, x in v.items()]}
    if type(v).__module__ == "numpy" and hasattr(v, "tolist"):
        return encode(v.tolist(), handles, depth + 1)
    handles[id(v)] = v
    return {"h": id(v)}


def _resolve(v, handles):
    """Decode arguments from the judge: same tags, handles mapped back to objects."""
    if isinstance(v, dict):
        ((tag, x),) = v.items()
        if tag == "h":
            return handles[x]
        if tag == "d":
            return {_resolve(k, handles): _resolve(y, handles) for k, y in x}
        if tag == "b":
            return bytes.fromhex(x)
        if tag == "c":
            return complex(*x)
        items = [_resolve(y, handles) for y in x]
        return {"l": list, "t": tuple, "s": set, "fs": frozenset}[tag](items)
    return v


def serve(req_fd, resp_fd, namespace):
    """Candidate side: announce top-level names, then answer calls until the judge hangs up."""
    handles = {}
    names = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            names[name] = {"m": value.__name__}
            continue
        try:
            names[name] = encode(value, handles)
        except Exception:
            handles[id(value)] = value
            names[name] = {"h": id(value)}
    send(resp_fd, ["ready", names])
    ops = {
        "call": lambda o, a, k: o(*a, **k),
        "getattr": getattr,
        "getitem": lambda o, k: o[k],
        "len": len,
        "list": list,
        "bool": bool,
        "str": str,
        "contains": lambda o, x: x in o,
    }
    while True:
        try:
            op, args = recv(req_fd)
        except (EOFError, OSError):
            return
        try:
            args = _resolve(args, handles)
            value = ops[op](*args)
            reply = ["ok", encode(value, handles)]
        except BaseException as exc:  # noqa: BLE001 - the candidate's exception becomes the judge's
            if isinstance(exc, KeyboardInterrupt):
                raise
            reply = ["err", type(exc).__name__, str(exc)[:1000]]
        send(resp_fd, reply)


# ---- judge side -----------------------------------------------------------------------


class Link:
    """The judge's end of the pipes to one candidate."""

    def __init__(self, req_fd, resp_fd):
        self.req_fd, self.resp_fd, self.dead = req_fd, resp_fd, None

    def call(self, op, *args):
        if self.dead:
            raise RemoteError(self.dead)
        try:
            send(self.req_fd, [op, self.encode_arg(list(args))])
            reply = recv(self.resp_fd)
        except (EOFError, OSError, ValueError, struct.error, RemoteError) as exc:
            self.dead = f"candidate process gone: {exc}"
            raise RemoteError(self.dead) from None
        if not isinstance(reply, list) or not reply:
            raise RemoteError("malformed reply")
        if reply[0] == "ok" and len(reply) == 2:
            return self.decode(reply[1])
        if reply[0] == "err" and len(reply) == 3:
            kind = getattr(builtins, str(reply[1]), None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(str(reply[2]))
            raise RemoteError(f"{reply[1]}: {reply[2]}")
        raise RemoteError("malformed reply")

    def encode_arg(self, v):
        t = type(v)
        if v is None or t in (bool, int, float, str):
            return v
        if t is Remote:
            return {"h": object.__getattribute__(v, "_h")}
        if t is complex:
            return {"c": [v.real, v.imag]}
        if t in (bytes, bytearray):
            return {"b": bytes(v).hex()}
        if t is dict:
            return {"d": [[self.encode_arg(k), self.encode_arg(x)] for k, x in v.items()]}
        tag = {list: "l", tuple: "t", set: "s", frozenset: "fs"}.get(t)
        if tag is None:
            raise TypeError(f"cannot pass a {t.__name__} to the candidate's code")
        return {tag: [self.encode_arg(x) for x in v]}

    def decode(self, v):
        """Strict decoding into exact builtin types (no object of the candidate's making)."""
        t = type(v)
        if v is None or t in (bool, int, float, str):
            return v
        if t is not dict or len(v) != 1:
            raise RemoteError("malformed value")
        ((tag, x),) = v.items()
        if tag == "h" and type(x) is int:
            return Remote(self, x)
        if tag == "b" and type(x) is str:
            return bytes.fromhex(x)
        if tag == "c" and type(x) is list and len(x) == 2 and all(type(y) in (int, float) for y in x):
            return complex(x[0], x[1])
        if type(x) is not list:
            raise RemoteError("malformed value")
        if tag == "d":
            if not all(type(p) is list and len(p) == 2 for p in x):
                raise RemoteError("malformed value")
            return {self.decode(k): self.decode(y) for k, y in x}
        kind = {"l": list, "t": tuple, "s": set, "fs": frozenset}.get(tag)
        if kind is None:
            raise RemoteError("malformed value")
        return kind(self.decode(y) for y in x)


class Remote:
    """A stand-in for an object living in the candidate process. Equality is identity:
    a candidate object can never claim to equal an expected value."""

    __slots__ = ("_link", "_h")

    def __init__(self, link, h):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_h", h)

    def _rpc(self, op, *args):
        return object.__getattribute__(self, "_link").call(op, self, *args)

    def __call__(self, *args, **kwargs):
        return self._rpc("call", list(args), kwargs)

    def __getattr__(self, name):
        return self._rpc("getattr", name)

    def __getitem__(self, key):
        return self._rpc("getitem", key)

    def __len__(self):
        return self._rpc("len")

    def __iter__(self):
        return iter(self._rpc("list"))

    def __bool__(self):
        return bool(self._rpc("bool") is True)

    def __str__(self):
        return str(self._rpc("str"))

    def __contains__(self, x):
        return self._rpc("contains", x) is True

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return object.__getattribute__(self, "_h")

    def __repr__(self):
        return f"<candidate object {object.__getattribute__(self, '_h'):#x}>"


def judge_namespace(link, names):
    """The judge's globals: candidate values by value, functions/objects as stubs. Names of
    standard-library modules are bound to the judge's own import whatever the candidate put
    there (its copy may be patched or fake), and names of builtins are never taken from the
    candidate (a top-level ``abs = lambda x: 0`` must not change how a test computes)."""
    import importlib

    if type(names) is not dict:
        raise RemoteError("malformed name table")
    g = {"__name__": "__main__", "__builtins__": builtins}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    for name, v in names.items():
        if type(name) is not str or hasattr(builtins, name):
            continue
        module = v["m"] if type(v) is dict and set(v) == {"m"} and type(v["m"]) is str else None
        if name in stdlib:
            module = name
        if module is not None:
            try:
                g[name] = importlib.import_module(module)
            except Exception:
                pass
            continue
        try:
            g[name] = link.decode(v)
        except RemoteError:
            pass
    return g
