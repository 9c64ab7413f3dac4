//! CIDR and address arithmetic for the fake's IPAM, on `u128` so IPv4 and
//! IPv6 share one code path.

use std::net::IpAddr;

/// A parsed CIDR: its first and last address and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub first: u128,
    pub last: u128,
    pub prefix_len: u8,
    pub v6: bool,
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// An address number back to text.
pub fn text(n: u128, v6: bool) -> String {
    match (v6, u32::try_from(n)) {
        (false, Ok(n)) => std::net::Ipv4Addr::from(n).to_string(),
        _ => std::net::Ipv6Addr::from(n).to_string(),
    }
}

/// An address as a number, with its version.
pub fn parse_ip(s: &str) -> Option<(u128, bool)> {
    let ip: IpAddr = s.parse().ok()?;
    Some((num(ip), ip.is_ipv6()))
}

impl Cidr {
    /// `10.0.0.0/24`; host bits must be zero, as Neutron insists.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = s.split_once('/')?;
        let (n, v6) = parse_ip(addr)?;
        let prefix_len: u8 = len.parse().ok()?;
        let bits = if v6 { 128 } else { 32 };
        if prefix_len > bits {
            return None;
        }
        let host_bits = u32::from(bits - prefix_len);
        let size = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        if n & size != 0 {
            return None;
        }
        Some(Cidr {
            first: n,
            last: n | size,
            prefix_len,
            v6,
        })
    }

    pub fn contains(&self, n: u128) -> bool {
        (self.first..=self.last).contains(&n)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.v6 == other.v6 && self.first <= other.last && other.first <= self.last
    }

    pub fn to_text(self) -> String {
        format!("{}/{}", text(self.first, self.v6), self.prefix_len)
    }

    /// The first host (Neutron's default gateway).
    pub fn first_host(&self) -> u128 {
        self.first + 1
    }

    /// The last address a port may get (IPv4 keeps the broadcast).
    pub fn last_host(&self) -> u128 {
        if self.v6 { self.last } else { self.last - 1 }
    }

    /// The blocks of `prefix_len` inside this CIDR, in order (at most
    /// `limit` of them).
    pub fn blocks(&self, prefix_len: u8, limit: usize) -> Vec<Cidr> {
        let bits = if self.v6 { 128 } else { 32 };
        if prefix_len < self.prefix_len || prefix_len > bits {
            return Vec::new();
        }
        let step = 1u128 << u32::from(bits - prefix_len).min(127);
        let mut out = Vec::new();
        let mut at = self.first;
        while at <= self.last && out.len() < limit {
            out.push(Cidr {
                first: at,
                last: at + (step - 1),
                prefix_len,
                v6: self.v6,
            });
            match at.checked_add(step) {
                Some(next) => at = next,
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert_eq!(text(c.first_host(), false), "10.0.0.1");
        assert_eq!(text(c.last_host(), false), "10.0.0.254");
        assert!(Cidr::parse("10.0.0.1/24").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        let p = Cidr::parse("10.10.0.0/16").unwrap();
        let b = p.blocks(24, 3);
        assert_eq!(b[2].to_text(), "10.10.2.0/24");
        assert!(p.overlaps(&c.blocks(24, 1)[0]) == p.contains(c.first));
        let v6 = Cidr::parse("fd10:10::/48").unwrap();
        assert_eq!(v6.blocks(64, 2)[1].to_text(), "fd10:10:0:1::/64");
    }
}
