//! Keeping only the capability the driver uses. The driver needs
//! `CAP_NET_ADMIN` (links, addresses, bridges, OVS ports) and nothing else,
//! which `kuryr.service` enforces with `CapabilityBoundingSet=`. dockerd
//! gives a managed plugin its default container set (`CAP_CHOWN`,
//! `CAP_DAC_OVERRIDE`, `CAP_SETUID`, ...) on top of what the plugin's
//! `config.json` asks for, and the config cannot remove any of them, so the
//! plugin's entrypoint runs `kuryr server --drop-capabilities`: before
//! anything else starts, [`keep_only`] removes every other capability from
//! all five sets (bounding and ambient included) and sets `no_new_privs`.
//!
//! Capabilities belong to a thread, and a thread inherits its creator's:
//! [`keep_only`] must run before the process starts any other thread.

use std::io;

/// `CAP_NET_ADMIN`'s number.
pub const CAP_NET_ADMIN: u32 = 12;

/// Capability names by number (capabilities(7), Linux 5.9+).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the capabilities in `mask` (bit n = capability n), in
/// number order; a number this table does not know is `CAP_<n>`.
pub fn names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match NAMES.get(bit as usize) {
            Some(name) => (*name).to_string(),
            None => format!("CAP_{bit}"),
        })
        .collect()
}

/// The number of a capability by name (`CAP_NET_ADMIN` → 12).
pub fn number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// This thread's sets before and after [`keep_only`], as bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub effective_before: u64,
    pub bounding_before: u64,
    pub effective: u64,
    pub permitted: u64,
    pub bounding: u64,
}

impl Dropped {
    /// One line for the log: what was held and what is kept.
    pub fn describe(&self) -> String {
        let list = |m: u64| {
            let n = names(m);
            if n.is_empty() {
                "none".to_string()
            } else {
                n.join(" ")
            }
        };
        format!(
            "capabilities: held {}; dropped all but {} (effective, permitted, bounding: {})",
            list(self.effective_before),
            list(self.effective),
            list(self.bounding),
        )
    }
}

/// Remove every capability but `keep` (a mask) from this thread's
/// bounding, ambient, inheritable, permitted and effective sets, and set
/// `no_new_privs`. A capability of `keep` not held stays not held.
/// Without `CAP_SETPCAP` the bounding set cannot shrink: an error.
pub fn keep_only(keep: u64) -> io::Result<Dropped> {
    let (effective_before, permitted_before) = capget()?;
    let bounding_before = bounding()?;
    for cap in 0..64u32 {
        if bounding_before & (1u64 << cap) != 0 && keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
                return Err(io::Error::other(format!(
                    "cannot drop {} from the bounding set: {}",
                    names(1u64 << cap).join(""),
                    io::Error::last_os_error()
                )));
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let ambient = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if ambient != 0 {
        return Err(io::Error::last_os_error());
    }
    let kept = permitted_before & keep;
    capset(kept, kept, 0)?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (effective, permitted) = capget()?;
    Ok(Dropped {
        effective_before,
        bounding_before,
        effective,
        permitted,
        bounding: bounding()?,
    })
}

/// This thread's bounding set.
fn bounding() -> io::Result<u64> {
    let mut mask = 0u64;
    for cap in 0..64u32 {
        // SAFETY: prctl with integer arguments only.
        match unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } {
            1 => mask |= 1u64 << cap,
            0 => {}
            // EINVAL: past the kernel's last capability.
            _ => break,
        }
    }
    Ok(mask)
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit halves.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// This thread's (effective, permitted) sets.
fn capget() -> io::Result<(u64, u64)> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` for version 3, which `data` holds.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let half = |m: u64, i: usize| (m >> (32 * i)) as u32;
    let data: [Data; 2] = std::array::from_fn(|i| Data {
        effective: half(effective, i),
        permitted: half(permitted, i),
        inheritable: half(inheritable, i),
    });
    // SAFETY: capset reads two `Data` for version 3, which `data` holds.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_number() {
        assert_eq!(names(1 << CAP_NET_ADMIN), vec!["CAP_NET_ADMIN"]);
        assert_eq!(
            names(0x3 | 1 << 40 | 1 << 45),
            vec![
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_CHECKPOINT_RESTORE",
                "CAP_45"
            ]
        );
        assert_eq!(number("CAP_NET_ADMIN"), Some(CAP_NET_ADMIN));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_NOPE"), None);
    }

    /// On a thread of its own (capabilities are per thread): afterwards
    /// the thread holds CAP_NET_ADMIN at most, in every set.
    #[test]
    fn keep_only_net_admin_on_a_thread() {
        let (dropped, status) = std::thread::spawn(|| {
            let d = keep_only(1 << CAP_NET_ADMIN);
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            (d, status)
        })
        .join()
        .unwrap();
        let field = |name: &str| {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {status}"));
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        let net_admin = 1u64 << CAP_NET_ADMIN;
        match dropped {
            Ok(d) => {
                assert_eq!(d.effective, d.effective_before & net_admin, "{d:?}");
                assert_eq!(d.bounding, d.bounding_before & net_admin, "{d:?}");
                assert_eq!(field("CapEff:"), d.effective);
                assert_eq!(field("CapPrm:"), d.permitted);
                assert_eq!(field("CapBnd:"), d.bounding);
                assert_eq!(field("CapInh:"), 0);
                assert_eq!(field("CapAmb:"), 0);
                assert_eq!(field("NoNewPrivs:"), 1);
                assert!(
                    d.describe().contains("; dropped all but "),
                    "{}",
                    d.describe()
                );
            }
            // Not root (no CAP_SETPCAP): the bounding set cannot shrink,
            // and that is an error, not a silent pass.
            Err(e) => {
                assert!(e.to_string().contains("from the bounding set"), "{e}");
                assert_eq!(field("CapEff:") & 1 << 8, 0, "no CAP_SETPCAP: {status}");
            }
        }
    }
}
