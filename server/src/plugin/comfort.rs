//! The comfort layer inside each worker: curated builtins and an import
//! allowlist that give plugin authors an early, clear error for what cannot
//! work in a worker (files, sockets, processes, threads). It is not the
//! security boundary — the worker process and its kernel confinement are
//! ([`super::confine`], docs/SECURITY.md) — so it refuses nothing that works:
//! private attributes, `eval`, introspection and every pure-computation
//! module of the standard library are allowed.

/// Modules (and their submodules) a plugin may import; `game` always works.
/// The worker imports them all before it confines itself, so their native
/// parts are loaded while files can still be read.
pub const IMPORT_ALLOWLIST: &[&str] = &[
    "abc",
    "array",
    "base64",
    "binascii",
    "bisect",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "colorsys",
    "contextlib",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fractions",
    "functools",
    "graphlib",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "inspect",
    "io",
    "itertools",
    "json",
    "keyword",
    "math",
    "numbers",
    "operator",
    "pprint",
    "random",
    "re",
    "secrets",
    "statistics",
    "string",
    "struct",
    "sys",
    "textwrap",
    "time",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "uuid",
    "warnings",
    "weakref",
    "zlib",
];

/// Modules refused with the reason they cannot work in a worker.
pub const REFUSED_MODULES: &[(&str, &str)] = &[
    ("os", FILES),
    ("pathlib", FILES),
    ("shutil", FILES),
    ("glob", FILES),
    ("tempfile", FILES),
    ("fileinput", FILES),
    ("sqlite3", FILES),
    ("pickle", FILES),
    ("shelve", FILES),
    ("socket", NETWORK),
    ("ssl", NETWORK),
    ("http", NETWORK),
    ("urllib", NETWORK),
    (
        "asyncio",
        "asyncio needs its own event loop and sockets; use game.on(\"OnTick\") for periodic work",
    ),
    ("selectors", NETWORK),
    ("subprocess", PROCESSES),
    ("multiprocessing", PROCESSES),
    ("concurrent", PROCESSES),
    ("signal", PROCESSES),
    ("threading", THREADS),
    ("_thread", THREADS),
    ("ctypes", "native code cannot be loaded in a plugin worker"),
];

const FILES: &str =
    "the plugin worker has no file system; keep data in game.state and write with game.log";
const NETWORK: &str = "the plugin worker cannot open sockets; talk to players through the game API";
const PROCESSES: &str = "the plugin worker cannot start processes or handle signals";
const THREADS: &str = "plugins run one callback at a time and game functions work only inside callbacks; use game.on(\"OnTick\") for periodic work";

/// Builtins replaced by a function that raises `PermissionError` with why.
pub const STUBBED_BUILTINS: &[(&str, &str)] = &[
    ("open", FILES),
    ("input", "plugins have no console input"),
    ("breakpoint", "plugins cannot be debugged interactively"),
    (
        "help",
        "interactive help is not available in a plugin worker",
    ),
    (
        "exit",
        "a plugin cannot stop its worker; return from the callback instead",
    ),
    (
        "quit",
        "a plugin cannot stop its worker; return from the callback instead",
    ),
];

/// The Python half of the worker (comfort layer and wrapper helpers).
pub const WORKER_PY: &str = include_str!("py/worker.py");
