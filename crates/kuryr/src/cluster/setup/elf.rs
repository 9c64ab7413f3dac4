//! Is an executable statically linked? The managed plugin's root file
//! system holds one `kuryr` binary and the CA bundle, no shared library, so
//! node setup puts only a binary there that names no program interpreter
//! (no `PT_INTERP` program header: the dynamic loader a dynamically linked
//! executable needs, such as `/lib64/ld-linux-x86-64.so.2`). A static-pie
//! binary, what `crt-static` makes, has a `PT_DYNAMIC` header for its own
//! relocations but no interpreter, so the interpreter is the test.
//!
//! Only the ELF header and the program headers are read; both classes and
//! byte orders are understood, and a file that is not an ELF executable is
//! an error saying why.

/// `PT_INTERP`: the program header naming the dynamic loader.
const PT_INTERP: u32 = 3;

/// The program interpreter `elf` names (`Some("/lib64/ld-linux-x86-64.so.2")`),
/// or `None` for a statically linked executable.
pub fn interpreter(elf: &[u8]) -> Result<Option<String>, String> {
    let h = Header::parse(elf)?;
    for i in 0..h.phnum {
        let ph = h
            .phoff
            .checked_add(i.checked_mul(h.phentsize).ok_or(TRUNCATED)?)
            .ok_or(TRUNCATED)?;
        if h.u32(ph)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if h.wide {
            (h.u64(ph + 8)?, h.u64(ph + 32)?)
        } else {
            (u64::from(h.u32(ph + 4)?), u64::from(h.u32(ph + 16)?))
        };
        let start = usize::try_from(offset).map_err(|_| TRUNCATED)?;
        let end = start
            .checked_add(usize::try_from(size).map_err(|_| TRUNCATED)?)
            .ok_or(TRUNCATED)?;
        let raw = elf.get(start..end).ok_or(TRUNCATED)?;
        let path = raw.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(path).into_owned()));
    }
    Ok(None)
}

const TRUNCATED: &str = "truncated ELF file";

/// What is needed of the ELF header to walk the program headers.
struct Header<'a> {
    bytes: &'a [u8],
    /// ELFCLASS64.
    wide: bool,
    little: bool,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
}

impl<'a> Header<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Header<'a>, String> {
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("not an ELF file".into());
        }
        let wide = match bytes.get(4) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err("unknown ELF class".into()),
        };
        let little = match bytes.get(5) {
            Some(1) => true,
            Some(2) => false,
            _ => return Err("unknown ELF byte order".into()),
        };
        let mut h = Header {
            bytes,
            wide,
            little,
            phoff: 0,
            phentsize: 0,
            phnum: 0,
        };
        // e_type: ET_EXEC or ET_DYN (a position-independent executable).
        match h.u16(16)? {
            2 | 3 => {}
            other => return Err(format!("ELF type {other} is not an executable")),
        }
        let phoff = if wide {
            h.u64(32)?
        } else {
            u64::from(h.u32(28)?)
        };
        let (entsize_at, num_at) = if wide { (54, 56) } else { (42, 44) };
        h.phoff = usize::try_from(phoff).map_err(|_| TRUNCATED)?;
        h.phentsize = usize::from(h.u16(entsize_at)?);
        h.phnum = usize::from(h.u16(num_at)?);
        if h.phnum == 0 {
            return Err("no program headers: not an executable".into());
        }
        Ok(h)
    }

    fn field<const N: usize>(&self, at: usize) -> Result<[u8; N], String> {
        let end = at.checked_add(N).ok_or(TRUNCATED)?;
        let b = self.bytes.get(at..end).ok_or(TRUNCATED)?;
        let mut a = [0; N];
        a.copy_from_slice(b);
        if !self.little {
            a.reverse();
        }
        Ok(a)
    }

    fn u16(&self, at: usize) -> Result<u16, String> {
        self.field(at).map(u16::from_le_bytes)
    }

    fn u32(&self, at: usize) -> Result<u32, String> {
        self.field(at).map(u32::from_le_bytes)
    }

    fn u64(&self, at: usize) -> Result<u64, String> {
        self.field(at).map(u64::from_le_bytes)
    }
}

/// Synthetic executables for tests: an ELF64 little-endian header and
/// program headers, with a `PT_INTERP` naming `interp` when given.
#[cfg(test)]
pub(crate) fn synthetic(interp: Option<&str>) -> Vec<u8> {
    let phnum: u16 = if interp.is_some() { 2 } else { 1 };
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little-endian
    b[6] = 1; // EV_CURRENT
    b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b[56..58].copy_from_slice(&phnum.to_le_bytes());
    let data_at = 64 + 56 * u64::from(phnum);
    let mut load = vec![0u8; 56];
    load[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b.extend(load);
    if let Some(path) = interp {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
        ph[8..16].copy_from_slice(&data_at.to_le_bytes());
        ph[32..40].copy_from_slice(&(path.len() as u64 + 1).to_le_bytes());
        b.extend(ph);
        b.extend(path.as_bytes());
        b.push(0);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_and_dynamic_executables() {
        assert_eq!(interpreter(&synthetic(None)), Ok(None));
        assert_eq!(
            interpreter(&synthetic(Some("/lib64/ld-linux-x86-64.so.2"))),
            Ok(Some("/lib64/ld-linux-x86-64.so.2".into()))
        );
    }

    /// A real dynamically linked executable of the system.
    #[test]
    fn the_systems_shell_names_its_loader() {
        let sh = std::fs::read("/bin/sh").expect("/bin/sh");
        let interp = interpreter(&sh).expect("an ELF executable");
        assert!(
            interp.as_deref().is_some_and(|i| i.contains("ld-")),
            "{interp:?}"
        );
    }

    #[test]
    fn what_is_not_an_executable_is_an_error() {
        assert_eq!(
            interpreter(b"#!/bin/sh\necho hi\n"),
            Err("not an ELF file".into())
        );
        let full = synthetic(Some("/lib/ld.so"));
        for cut in [3, 20, 40, 64, 100, full.len() - 3] {
            assert!(interpreter(&full[..cut]).is_err(), "cut at {cut}");
        }
        let mut relocatable = synthetic(None);
        relocatable[16] = 1; // ET_REL
        assert_eq!(
            interpreter(&relocatable),
            Err("ELF type 1 is not an executable".into())
        );
    }
}
