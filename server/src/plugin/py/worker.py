"""Python half of a shard plugin worker (loaded by the worker before any
plugin code runs). It holds the comfort layer — curated builtins and the
import allowlist that give plugin authors early, clear errors — and the
helpers the one wrapper uses. None of this is a security boundary: the
worker process and its kernel confinement are (docs/SECURITY.md)."""

import builtins
import copy
import io
import sys
import traceback


def _refuse(name, why):
    def refused(*args, **kwargs):
        raise PermissionError(f"{name}() is not available to plugins: {why}")
    refused.__name__ = name
    return refused


def make_builtins(game_mod, allow, reasons, stubs):
    """The builtins of a plugin namespace: the real ones, with `stubs`
    (name -> why) replaced by functions that raise a clear error, and an
    `__import__` that gives `game` and refuses modules outside `allow`."""
    b = dict(builtins.__dict__)
    for name, why in stubs.items():
        b[name] = _refuse(name, why)
    real = builtins.__import__
    allowed = ", ".join(sorted(allow))

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0:
            raise ImportError("relative imports do not work in plugins: a plugin is one file")
        if name == "game":
            return game_mod
        top = name.split(".")[0]
        if top not in allow:
            why = reasons.get(top, "it is not on the list of modules plugins may import")
            raise ImportError(f"import of {name!r} is not available to plugins: {why} (allowed: {allowed})")
        return real(name, globals, locals, fromlist, level)

    b["__import__"] = _import
    return b


def deliver(batch, report):
    """Calls each event's listeners in order. `batch` holds (what, listeners,
    argument, fresh); with `fresh` each listener gets its own copy of the
    argument. An exception is reported and the next listener runs, unless
    `report` says the delivery's CPU budget is spent."""
    for what, funcs, arg, fresh in batch:
        for f in funcs:
            try:
                f(copy.deepcopy(arg) if fresh else arg)
            except BaseException as e:
                if report(what, e):
                    return


def format_exc(exc, limit_chars):
    """The traceback of `exc`, cut to `limit_chars` characters."""
    try:
        text = "".join(traceback.format_exception(exc))
    except BaseException as e:  # a hostile __str__ or __repr__
        text = f"<traceback unavailable: {type(e).__name__}>"
    if len(text) > limit_chars:
        text = text[: limit_chars // 2] + "\n[... cut ...]\n" + text[-limit_chars // 2 :]
    return text


def short_exc(exc, limit_chars):
    """`Type: message`, cut to `limit_chars` characters."""
    try:
        text = "".join(traceback.format_exception_only(exc)).strip()
    except BaseException as e:
        text = f"{type(exc).__name__}: <message unavailable: {type(e).__name__}>"
    return text[:limit_chars]


class Output(io.TextIOBase):
    """`sys.stdout`/`sys.stderr` of the worker: lines go to the plugin's log
    through the server (the worker writes no files)."""

    def __init__(self, emit):
        self._emit = emit
        self._buf = ""

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str")
        self._buf += s
        if "\n" in self._buf or len(self._buf) > 4096:
            self.flush()
        return len(s)

    def flush(self):
        if self._buf:
            text, self._buf = self._buf, ""
            try:
                self._emit(text.rstrip("\n"))
            except Exception:
                pass


def console(code, ns):
    """Runs operator console code; returns what it printed, the repr of an
    expression's value, or the traceback."""
    buf = io.StringIO()
    out, err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = buf
    try:
        try:
            c = compile(code, "<console>", "eval")
        except SyntaxError:
            c = None
        if c is not None:
            r = eval(c, ns)
            if r is not None:
                print(repr(r))
        else:
            exec(compile(code, "<console>", "exec"), ns)
    except BaseException as e:
        buf.write("".join(traceback.format_exception(e)))
    finally:
        sys.stdout, sys.stderr = out, err
    return buf.getvalue()


class MetadataError(Exception):
    """`__plugin__` is missing or malformed; the message says how to fix it."""


def read_metadata(ns, stem, file, max_name, max_version):
    """Checks `__plugin__` and returns the version."""
    meta = ns.get("__plugin__")
    if meta is None:
        raise MetadataError(
            f'{file}: __plugin__ is missing; define __plugin__ = {{"name": "{stem}", "version": "1.0.0"}}'
        )
    if type(meta) is not dict:
        raise MetadataError(f"{file}: __plugin__ must be a dict")
    values = {}
    for key, limit in (("name", max_name), ("version", max_version)):
        if key not in meta:
            raise MetadataError(f'{file}: __plugin__["{key}"] is missing')
        v = meta[key]
        if type(v) is not str:
            raise MetadataError(f'{file}: __plugin__["{key}"] must be a string')
        if not v or len(v.encode()) > limit:
            raise MetadataError(f'{file}: __plugin__["{key}"] must be 1 to {limit} bytes long')
        values[key] = v
    if values["name"] != stem:
        raise MetadataError(
            f'{file}: __plugin__["name"] is "{values["name"]}" but must equal the file name "{stem}"'
        )
    return values["version"]


def remember_source(file, source):
    """Lets tracebacks show source lines without reading the file."""
    import linecache

    linecache.cache[file] = (len(source), None, source.splitlines(True), file)
