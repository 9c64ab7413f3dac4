//! TX checksum offload through the legacy `SIOCETHTOOL` ioctl
//! (`ethtool -K <dev> tx off`, without shelling out to ethtool).
//!
//! The ioctl acts on the network namespace of the socket it is issued on,
//! i.e. of the calling thread: the host namespace in the daemon.

use std::ffi::c_char;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `linux/ethtool.h`: get / set TX checksum offload.
const ETHTOOL_GTXCSUM: u32 = 0x0000_0016;
const ETHTOOL_STXCSUM: u32 = 0x0000_0017;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Is TX checksum offload on for `ifname` (`ethtool -k`: tx-checksumming)?
pub fn tx_checksum(ifname: &str) -> io::Result<bool> {
    let mut v = EthtoolValue {
        cmd: ETHTOOL_GTXCSUM,
        data: 0,
    };
    ethtool(ifname, &mut v)?;
    Ok(v.data != 0)
}

/// Turn TX checksum offload on or off for `ifname` (`ethtool -K <dev> tx
/// on|off`).
pub fn set_tx_checksum(ifname: &str, on: bool) -> io::Result<()> {
    let mut v = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: u32::from(on),
    };
    ethtool(ifname, &mut v)
}

fn ethtool(ifname: &str, value: &mut EthtoolValue) -> io::Result<()> {
    let name = ifname.as_bytes();
    // IFNAMSIZ (16) including the terminating NUL.
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {ifname:?}"),
        ));
    }
    // SAFETY: plain syscall with constant arguments; the result is checked
    // before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created, valid descriptor that nothing else
    // owns; OwnedFd closes it on every return path.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };

    // SAFETY: `ifreq` is a plain C struct (a name array and a union of
    // integers/pointers) for which all-zero bytes are a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name) {
        *dst = *src as c_char;
    }
    ifr.ifr_ifru.ifru_data = (value as *mut EthtoolValue).cast::<c_char>();

    // SAFETY: SIOCETHTOOL reads `ifr` (NUL-terminated name, zeroed above,
    // length checked) and reads/writes the `struct ethtool_value` that
    // `ifru_data` points to; both live on this stack frame for the whole
    // call and `EthtoolValue` has the kernel's layout (`repr(C)`, two u32).
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "0123456789abcdef", "a\0b"] {
            let e = tx_checksum(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn missing_device_is_enodev() {
        // Reading is harmless and needs no privilege.
        let e = tx_checksum("kuryr-nodev0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }
}
