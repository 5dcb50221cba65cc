//! Kernel confinement of a plugin worker, applied inside the worker before
//! any plugin code runs. Each layer is a boundary of its own (see
//! docs/SECURITY.md):
//!
//! - rlimits: address space (`plugin_memory_mb`), open files, no core dumps,
//!   no file growth;
//! - `no_new_privs` and an emptied capability set;
//! - Landlock: read-only access to the Python installation and the plugin's
//!   own files, nothing else (no writes anywhere); TCP bind/connect and
//!   signals to processes outside the worker refused where the kernel can;
//! - seccomp: no `execve`, no new processes (threads are allowed), no new
//!   sockets, no `ptrace`, `mount`, `bpf`, namespaces, keyrings or io_uring,
//!   no signals or limits aimed at another process.
//!
//! Without Landlock or seccomp a worker refuses to run plugins unless the
//! operator opted out (`allow_unconfined_plugins = true`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::tuning::WORKER_MAX_OPEN_FILES;

/// Why a worker could not confine itself.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// A resource limit could not be set.
    #[error("cannot set {what}: {source}")]
    Rlimit {
        /// Which limit.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// `prctl` failed.
    #[error("cannot set {what}: {source}")]
    Prctl {
        /// Which setting.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The kernel lacks Landlock and confinement is required.
    #[error(
        "the kernel does not enforce Landlock ({0}); plugins need Linux 5.13+ with `landlock` in the \
         lsm= boot list, or set `allow_unconfined_plugins = true` in server.toml to run them unconfined"
    )]
    NoLandlock(String),
    /// Landlock setup failed.
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The seccomp filter could not be built or installed.
    #[error(
        "seccomp: {0}; plugins need a kernel with seccomp filters, or set \
         `allow_unconfined_plugins = true` in server.toml to run them unconfined"
    )]
    Seccomp(String),
}

/// Sets the worker's resource limits: address space, open files, core size
/// and file size (workers write no files).
pub fn set_rlimits(memory_mb: u64) -> Result<(), ConfineError> {
    let bytes = memory_mb.saturating_mul(1024 * 1024);
    for (what, res, value) in [
        ("the address-space limit", libc::RLIMIT_AS, bytes),
        (
            "the open-file limit",
            libc::RLIMIT_NOFILE,
            WORKER_MAX_OPEN_FILES,
        ),
        ("the core-dump limit", libc::RLIMIT_CORE, 0),
        ("the file-size limit", libc::RLIMIT_FSIZE, 0),
    ] {
        let lim = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: plain syscall with a valid pointer to a local struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(ConfineError::Rlimit {
                what,
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Sets `no_new_privs` and drops every capability (a server run as root must
/// not hand root's powers to plugin code).
pub fn drop_privileges() -> Result<(), ConfineError> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ConfineError::Prctl {
            what: "no_new_privs",
            source: std::io::Error::last_os_error(),
        });
    }
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; EINVAL past the last capability is expected.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset with a v3 header and the two data words it expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if rc != 0 {
        return Err(ConfineError::Prctl {
            what: "an empty capability set",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Restricts the file system to reading `read_only` (and below); returns a
/// description of what is enforced.
pub fn landlock(read_only: &[PathBuf], required: bool) -> Result<String, ConfineError> {
    let abi = ABI::V6;
    let existing: Vec<&PathBuf> = read_only.iter().filter(|p| p.exists()).collect();
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(existing, AccessFs::from_read(abi)))?
        .restrict_self()?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok("landlock (full)".into()),
        RulesetStatus::PartiallyEnforced => Ok(format!(
            "landlock (partial: {:?}; files enforced, newer rights such as TCP or signal scoping may not be)",
            status.landlock
        )),
        RulesetStatus::NotEnforced if required => {
            Err(ConfineError::NoLandlock(format!("{:?}", status.landlock)))
        }
        RulesetStatus::NotEnforced => Ok("NO landlock (allow_unconfined_plugins)".into()),
    }
}

fn arch() -> Result<TargetArch, ConfineError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err(ConfineError::Seccomp(
            "no seccomp filter for this CPU architecture".into(),
        ))
    }
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, ConfineError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| ConfineError::Seccomp(e.to_string()))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, ConfineError> {
    SeccompRule::new(conds).map_err(|e| ConfineError::Seccomp(e.to_string()))
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, ConfineError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno.unsigned_abs()),
        arch()?,
    )
    .map_err(|e| ConfineError::Seccomp(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string()))
}

/// Syscalls a worker never needs and that would reach outside it; refused
/// with EPERM whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_bpf,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_getfd,
    libc::SYS_pidfd_send_signal,
    libc::SYS_process_madvise,
    libc::SYS_kcmp,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_setrlimit,
    libc::SYS_setpriority,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_setparam,
    libc::SYS_ioprio_set,
    libc::SYS_tkill,
    libc::SYS_setsid,
    libc::SYS_setpgid,
];

/// Installs the seccomp filters on the calling thread (threads it starts
/// later inherit them). Call before starting any thread.
pub fn seccomp() -> Result<(), ConfineError> {
    let pid = u64::from(std::process::id());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|s| (*s, Vec::new())).collect();
    // clone: threads only (a clone without CLONE_THREAD is a new process).
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(
            0,
            SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
            0,
        )?])?],
    );
    // Signals only to this process (kill(0) or kill(-1) would reach the server).
    for sys in [
        libc::SYS_kill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
    ] {
        rules.insert(sys, vec![rule(vec![cond(0, SeccompCmpOp::Ne, pid)?])?]);
    }
    // prlimit64 may read limits (new_limit == NULL) but never change them.
    rules.insert(
        libc::SYS_prlimit64,
        vec![rule(vec![
            SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Ne, 0)
                .map_err(|e| ConfineError::Seccomp(e.to_string()))?,
        ])?],
    );
    let deny = compile(rules, libc::EPERM)?;
    // clone3 cannot be filtered by its flags (they sit behind a pointer):
    // ENOSYS makes libc fall back to clone, whose flags the rule above checks.
    let clone3 = compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
    )?;
    for prog in [&deny, &clone3] {
        seccompiler::apply_filter(prog).map_err(|e| ConfineError::Seccomp(e.to_string()))?;
    }
    Ok(())
}

/// Closes every inherited descriptor above the channel, so nothing the
/// server had open leaks into the worker.
pub fn close_inherited_fds(keep_up_to: i32) {
    let first_fd = keep_up_to.saturating_add(1).max(0);
    let first = libc::c_uint::try_from(first_fd).unwrap_or_default();
    // SAFETY: close_range on descriptors this process does not use.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) };
    if rc != 0 {
        for fd in first_fd..1024 {
            // SAFETY: closing descriptors nobody in this process uses; EBADF is fine.
            unsafe { libc::close(fd) };
        }
    }
}
