//! Address slots: every test that makes Neutron subnets or Docker
//! networks takes a [`Slot`], and no two running tests ever hold the same
//! one, whichever binaries they are in and whether nextest runs them as
//! processes or `cargo test` as threads.
//!
//! A slot is an exclusive `flock` on one of [`SLOTS`] lock files, held by
//! the open file for as long as the `Slot` lives (a killed test's lock goes
//! with its process). Slot `n` owns the 64 /24s `10.200.0.0/13` holds at
//! `n * 64`; a test uses 8 of them at a random offset per run, so what a
//! killed run left behind is rarely met again.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::random_u64;

/// Slots in 10.200.0.0/13.
pub const SLOTS: u32 = 32;
/// /24s per slot.
const SLOT_SIZE: u32 = 64;
/// /24s a test may use ([`Slot::cidr4`]`(0..8)`).
pub const PER_TEST: u32 = 8;

/// One test's exclusive share of the test address space.
#[derive(Debug)]
pub struct Slot {
    index: u32,
    /// First /24 (index in 10.200.0.0/13) of this test's block.
    block: u32,
    v6: (u16, u16, u16),
    _lock: File,
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("kuryr-test-slots")
}

/// Try to take slot `n` without waiting.
fn try_lock(n: u32) -> Option<File> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).expect("slot lock directory");
    let file = File::create(dir.join(format!("slot-{n}.lock"))).expect("slot lock file");
    // SAFETY: flock on a file descriptor we own; LOCK_NB never blocks.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(file)
}

impl Slot {
    /// A free slot, waiting up to a minute for one.
    pub fn take() -> Slot {
        let start = Instant::now();
        let first = (random_u64() % u64::from(SLOTS)) as u32;
        loop {
            for i in 0..SLOTS {
                let n = (first + i) % SLOTS;
                if let Some(lock) = try_lock(n) {
                    let offset = (random_u64() % u64::from(SLOT_SIZE - PER_TEST)) as u32;
                    let r = random_u64();
                    return Slot {
                        index: n,
                        block: n * SLOT_SIZE + offset,
                        v6: ((r >> 48) as u16, (r >> 32) as u16, r as u16),
                        _lock: lock,
                    };
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "all {SLOTS} address slots stayed taken for a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Which slot this is.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// `10.x.y` of this test's `k`-th /24 (k < 8).
    pub fn prefix4(&self, k: u32) -> String {
        assert!(k < PER_TEST, "a test has {PER_TEST} /24s");
        let i = self.block + k;
        format!("10.{}.{}", 200 + i / 256, i % 256)
    }

    /// This test's `k`-th /24 (k < 8), e.g. `10.203.17.0/24`.
    pub fn cidr4(&self, k: u32) -> String {
        format!("{}.0/24", self.prefix4(k))
    }

    /// `10.x.y.<host>` inside [`Slot::cidr4`]`(k)`.
    pub fn ip4(&self, k: u32, host: u8) -> String {
        format!("{}.{host}", self.prefix4(k))
    }

    /// This test's random `fd00:....::/64`, number `k`.
    pub fn cidr6(&self, k: u32) -> String {
        let (a, b, c) = self.v6;
        let net = std::net::Ipv6Addr::new(0xfd00, a, b, c.wrapping_add(k as u16), 0, 0, 0, 0);
        format!("{net}/64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_live_slots_never_share_addresses() {
        let slots: Vec<Slot> = (0..4).map(|_| Slot::take()).collect();
        for (i, a) in slots.iter().enumerate() {
            for b in &slots[i + 1..] {
                assert_ne!(a.index(), b.index());
                assert_ne!(a.cidr4(0), b.cidr4(0));
            }
            assert!(a.cidr4(7).starts_with("10.2"), "{}", a.cidr4(7));
        }
        let n = slots[0].index();
        drop(slots);
        // Released with the value: free for the next test.
        assert!(try_lock(n).is_some());
    }
}
