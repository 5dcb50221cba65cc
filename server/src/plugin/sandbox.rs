//! The plugin sandbox: every rule about what plugin code may not do lives
//! here, in layers that each stop something on their own (docs/SECURITY.md
//! says what each stops and what none does):
//!
//! 1. curated builtins (no `open`, `exec`, `eval`, `compile`, `input`,
//!    `breakpoint`, `globals`, `vars`, `locals`, real `__import__`);
//! 2. an import allowlist ([`IMPORT_ALLOWLIST`]);
//! 3. a PEP 578 audit hook, installed once from Rust before any plugin runs
//!    and impossible to remove, that denies file, socket, process, ctypes,
//!    import and introspection events while plugin code runs;
//! 4. a check of the plugin's source (Python `ast`) refusing the attribute
//!    paths that walk out of a namespace, with file:line;
//! 5. the CPU budget (see `watchdog`), and 6. a recursion limit.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use pyo3::ffi;
use pyo3::prelude::*;

/// Modules a plugin may import (and their submodules); everything else is an
/// ImportError naming the module and this rule. `game` is always allowed.
pub const IMPORT_ALLOWLIST: &[&str] = &[
    "abc",
    "bisect",
    "cmath",
    "collections",
    "colorsys",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "textwrap",
    "time",
    "typing",
];

/// Builtins removed from every plugin namespace.
pub const DENIED_BUILTINS: &[&str] = &[
    "open",
    "exec",
    "eval",
    "compile",
    "input",
    "breakpoint",
    "globals",
    "vars",
    "locals",
    "exit",
    "quit",
    "help",
    "copyright",
    "credits",
    "license",
    "memoryview",
];

/// Attribute names a plugin's source may not use (besides `_private` and
/// dunder names outside [`ALLOWED_DUNDERS`]): frame, traceback, generator and
/// code internals, and the module names that lead to the interpreter.
pub const FORBIDDEN_ATTRS: &[&str] = &[
    "f_globals",
    "f_locals",
    "f_back",
    "f_builtins",
    "f_code",
    "f_trace",
    "tb_frame",
    "tb_next",
    "gi_frame",
    "gi_code",
    "gi_yieldfrom",
    "cr_frame",
    "cr_code",
    "cr_await",
    "ag_frame",
    "ag_code",
    "co_code",
    "co_consts",
    "co_names",
    "func_globals",
    "sys",
    "os",
    "builtins",
    "modules",
    "importlib",
    "subprocess",
    "socket",
    "ctypes",
    "io",
    "posix",
    "nt",
    "shutil",
    "signal",
    "threading",
    "gc",
    "inspect",
    "marshal",
    "pickle",
];

/// Dunder attributes a plugin may use (object protocol, harmless metadata).
pub const ALLOWED_DUNDERS: &[&str] = &[
    "__init__",
    "__repr__",
    "__str__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__hash__",
    "__len__",
    "__iter__",
    "__next__",
    "__contains__",
    "__getitem__",
    "__setitem__",
    "__enter__",
    "__exit__",
    "__name__",
    "__doc__",
    "__post_init__",
    "__add__",
    "__sub__",
    "__mul__",
    "__bool__",
];

/// Names a plugin's source may not mention at all.
pub const FORBIDDEN_NAMES: &[&str] = &[
    "__builtins__",
    "__import__",
    "__loader__",
    "__spec__",
    "__build_class__",
    "__debug__",
];

/// Deepest Python call depth while plugins run, so a recursion bomb ends in
/// a `RecursionError` that counts as that plugin's error.
pub const RECURSION_LIMIT: u32 = 400;

/// Audit events denied while plugin code runs, by exact name or by prefix
/// (ending in `.`): files, sockets, processes, ctypes, and the introspection
/// that leads out of the sandbox.
pub const DENIED_EVENTS: &[&str] = &[
    "open",
    "os.",
    "shutil.",
    "socket.",
    "subprocess.",
    "ctypes.",
    "_ctypes.",
    "glob.",
    "pty.",
    "sys._current_frames",
    "sys.settrace",
    "sys.setprofile",
    "sys.addaudithook",
    "sys.excepthook",
    "sys.unraisablehook",
    "function.__new__",
    "code.__new__",
    "marshal.",
    "pickle.",
    "builtins.input",
    "import",
    "urllib.",
    "webbrowser.",
    "mmap.",
    "fcntl.",
    "resource.",
    "signal.",
];

/// Submodules and lazy imports of allowlisted modules, imported by the host
/// up front because an import inside plugin code is denied by the audit hook.
pub const PREIMPORTED: &[&str] = &[
    "collections.abc",
    "_strptime",
    "json.decoder",
    "json.encoder",
];

/// How deep the host currently is inside plugin code (0 = host code).
static IN_PLUGIN: AtomicUsize = AtomicUsize::new(0);
/// The plugins whose code is running, innermost last (module names).
static RUNNING: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Marks plugin code as running while it lives; the audit hook only denies
/// inside this, so the host's own file and import work is unaffected.
pub struct PluginScope(());

impl PluginScope {
    /// Enters the code of plugin `module` (nesting is counted).
    pub fn enter(module: &str) -> Self {
        if let Ok(mut r) = RUNNING.lock() {
            r.push(module.to_string());
        }
        IN_PLUGIN.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for PluginScope {
    fn drop(&mut self) {
        IN_PLUGIN.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut r) = RUNNING.lock() {
            r.pop();
        }
    }
}

/// For `object.__setattr__`/`__delattr__` (CPython raises them when a type's
/// special attributes such as `__module__` or `__bases__` change): a plugin
/// may do that to its own classes, never to the host's `game` and builtin types.
fn type_change_denied(args: *mut ffi::PyObject) -> bool {
    // SAFETY: called from the audit hook with the GIL held; `args` is the
    // event's argument tuple, and every pointer is checked before use.
    unsafe {
        if args.is_null() || ffi::PyTuple_Check(args) == 0 || ffi::PyTuple_Size(args) < 1 {
            return false;
        }
        let obj = ffi::PyTuple_GetItem(args, 0);
        if obj.is_null() || ffi::PyType_Check(obj) == 0 {
            return false;
        }
        let module = ffi::PyObject_GetAttrString(obj, c"__module__".as_ptr());
        if module.is_null() {
            ffi::PyErr_Clear();
            return true;
        }
        let name = ffi::PyUnicode_AsUTF8(module);
        let owned = if name.is_null() {
            ffi::PyErr_Clear();
            None
        } else {
            Some(CStr::from_ptr(name).to_string_lossy().into_owned())
        };
        ffi::Py_DecRef(module);
        // The host's shared types; a plugin's own and stdlib classes are
        // left to the other layers (see docs/SECURITY.md).
        matches!(owned.as_deref(), None | Some("game") | Some("builtins"))
    }
}

/// Whether `event` is denied for plugin code; `module` is the module name of
/// an `import` event (allowlisted modules were imported by the host already,
/// so an import event inside plugin code is always something else).
pub fn event_denied(event: &str) -> bool {
    DENIED_EVENTS.iter().any(|d| {
        if d.ends_with('.') {
            event.starts_with(d)
        } else {
            event == *d
        }
    })
}

/// A PEP 578 audit hook as CPython calls it.
type AuditHook = unsafe extern "C" fn(*const c_char, *mut ffi::PyObject, *mut c_void) -> c_int;

// Part of CPython's stable C API since 3.8 (not wrapped by pyo3's ffi).
unsafe extern "C" {
    fn PySys_AddAuditHook(hook: Option<AuditHook>, data: *mut c_void) -> c_int;
}

unsafe extern "C" fn audit_hook(
    event: *const c_char,
    args: *mut ffi::PyObject,
    _data: *mut c_void,
) -> c_int {
    if IN_PLUGIN.load(Ordering::SeqCst) == 0 || event.is_null() {
        return 0;
    }
    // SAFETY: CPython passes a NUL-terminated event name.
    let name = unsafe { CStr::from_ptr(event) }.to_string_lossy();
    let denied = if name == "object.__setattr__" || name == "object.__delattr__" {
        type_change_denied(args)
    } else {
        event_denied(&name)
    };
    if !denied {
        return 0;
    }
    let msg = format!("shard sandbox: `{name}` is not allowed in plugins (audit hook)");
    let msg = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: called with the GIL held by CPython; sets the pending exception.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_PermissionError, msg.as_ptr()) };
    -1
}

/// Installs the audit hook (once per process; CPython offers no way to remove
/// it), imports the allowlisted modules outside plugin context so plugins
/// never trigger real imports, and sets the recursion limit.
pub fn install(py: Python<'_>) -> PyResult<()> {
    let mut result = Ok(());
    HOOK.call_once(|| {
        // SAFETY: the hook is a plain function with the signature CPython expects.
        let rc = unsafe { PySys_AddAuditHook(Some(audit_hook), std::ptr::null_mut()) };
        if rc != 0 {
            result = Err(PyErr::fetch(py));
        }
    });
    result?;
    for m in IMPORT_ALLOWLIST.iter().chain(PREIMPORTED) {
        py.import(*m)?;
    }
    py.import("sys")?
        .call_method1("setrecursionlimit", (RECURSION_LIMIT,))?;
    Ok(())
}

/// Python half of the sandbox: the builtins and the source check. Kept beside
/// the Rust lists it receives, so every rule is in this file.
pub const SANDBOX_PY: &CStr = c"
import ast, builtins, re

_FIELD = re.compile(r'\\{[^{}]*?[.\\[]([A-Za-z_][A-Za-z0-9_]*)')

def make_builtins(game_mod, denied, allow):
    b = dict(builtins.__dict__)
    for k in denied:
        b.pop(k, None)
    real = builtins.__import__
    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0:
            raise ImportError(f'relative import is not allowed in plugins (shard sandbox: import allowlist)')
        if name == 'game':
            return game_mod
        top = name.split('.')[0]
        if top not in allow:
            raise ImportError(f'import of {name!r} is not allowed in plugins (shard sandbox: import allowlist; allowed: {\", \".join(sorted(allow))})')
        for f in fromlist or ():
            if f.startswith('_'):
                raise ImportError(f'importing private name {f!r} from {name!r} is not allowed (shard sandbox: import allowlist)')
        return real(name, globals, locals, fromlist, level)
    b['__import__'] = _import
    return b

def _bad_attr(attr, forbidden, dunders, own=False):
    if attr in forbidden:
        return True
    if attr.startswith('__') and attr.endswith('__'):
        return attr not in dunders
    # `self._x` on a plugin's own objects is ordinary; `module._x` walks out.
    return attr.startswith('_') and not own

def check_source(source, filename, forbidden, dunders, names):
    tree = ast.parse(source, filename)
    problems = []
    def say(node, what):
        problems.append(f'{filename}:{node.lineno}: {what} (shard sandbox: source check)')
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            own = isinstance(node.value, ast.Name) and node.value.id in ('self', 'cls')
            if _bad_attr(node.attr, forbidden, dunders, own):
                say(node, f'attribute `.{node.attr}` is not allowed')
            elif node.attr.startswith('__') and not isinstance(node.ctx, ast.Load):
                say(node, f'assigning `.{node.attr}` is not allowed')
        elif isinstance(node, ast.Name) and node.id in names:
            say(node, f'name `{node.id}` is not allowed')
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ('getattr', 'setattr', 'delattr', 'hasattr'):
            if len(node.args) < 2 or not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                say(node, f'`{node.func.id}` needs a literal attribute name')
            elif _bad_attr(node.args[1].value, forbidden, dunders) or (node.func.id != 'getattr' and node.args[1].value.startswith('__')):
                say(node, f'`{node.func.id}` of `{node.args[1].value}` is not allowed')
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and '{' in node.value:
            for attr in _FIELD.findall(node.value):
                if _bad_attr(attr, forbidden, dunders):
                    say(node, f'format field reaching `{attr}` is not allowed')
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and any(n in names for n in node.names):
            say(node, 'rebinding a host name is not allowed')
    if problems:
        raise SyntaxError('plugin source refused:\\n' + '\\n'.join(problems))
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_events_match_by_name_and_prefix() {
        assert!(event_denied("open"));
        assert!(event_denied("os.system"));
        assert!(event_denied("socket.connect"));
        assert!(event_denied("subprocess.Popen"));
        assert!(event_denied("ctypes.dlopen"));
        assert!(event_denied("sys._current_frames"));
        assert!(
            !event_denied("sys._getframe"),
            "namedtuple and enum need it"
        );
        assert!(!event_denied("opening"));
        assert!(!event_denied("time.sleep"));
    }
}
