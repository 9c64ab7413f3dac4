//! The one place where every OpenStack call is counted and timed.
//!
//! Every request the client sends (Keystone and Neutron, retries included)
//! is recorded under an operation name such as `neutron.list_ports` or
//! `keystone.issue_token`. The driver reads deltas of these counters to
//! report Neutron round trips per Docker operation; the benchmarks read them
//! to compare against kuryr-libnetwork; the daemon's Prometheus metrics
//! are read from them (answers by HTTP status, latency in
//! [`LATENCY_BUCKETS`]), so there is one count of every request.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Operation names of status polls ([`CallSnapshot::neutron_polls`]).
pub const POLL_PREFIX: &str = "neutron.poll_";

tokio::task_local! {
    /// The counters of the piece of work this task is doing, if any.
    static SCOPE: Arc<CallStats>;
    /// What the piece of work this task is doing waits for, if watched.
    static WATCH: Arc<InFlight>;
}

/// The requests a piece of work has in flight and its last failure, so
/// that whoever gives up waiting for it can say what was unreachable.
#[derive(Debug, Default)]
pub struct InFlight {
    state: Mutex<InFlightState>,
}

#[derive(Debug, Default)]
struct InFlightState {
    next: u64,
    open: Vec<(u64, String, Instant)>,
    last_failure: Option<String>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, InFlightState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `neutron POST /v2.0/ports (no answer for 12 s)`: the oldest request
    /// in flight, and the last failure before it; `None` if neither.
    pub fn describe(&self) -> Option<String> {
        let st = self.lock();
        let open = st.open.first().map(|(_, what, since)| {
            format!("{what} (no answer for {} s)", since.elapsed().as_secs())
        });
        match (open, &st.last_failure) {
            (Some(open), Some(failed)) => Some(format!("{open}, after {failed}")),
            (Some(open), None) => Some(open),
            (None, failed) => failed.clone(),
        }
    }
}

/// Run `work` watched by `watch`: the requests any session sends from this
/// task are listed there while in flight.
pub async fn watched<F: Future>(watch: Arc<InFlight>, work: F) -> F::Output {
    WATCH.scope(watch, work).await
}

/// A request listed in the current [`watched`] scope until dropped.
pub(crate) struct InFlightGuard(Option<(Arc<InFlight>, u64)>);

/// List `what` (`neutron POST /v2.0/ports`) as in flight.
pub(crate) fn request_started(what: impl FnOnce() -> String) -> InFlightGuard {
    InFlightGuard(
        WATCH
            .try_with(|w| {
                let mut st = w.lock();
                st.next += 1;
                let id = st.next;
                st.open.push((id, what(), Instant::now()));
                (w.clone(), id)
            })
            .ok(),
    )
}

impl InFlightGuard {
    /// The request failed without an answer: remember why.
    pub(crate) fn failed(&self, why: &dyn std::fmt::Display) {
        if let Some((w, _)) = &self.0 {
            w.lock().last_failure = Some(why.to_string());
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some((w, id)) = &self.0 {
            w.lock().open.retain(|(i, _, _)| i != id);
        }
    }
}

/// Run `work` with counters of its own: every request any session sends
/// from this task while it runs is counted there too (besides the
/// session's own counters), so concurrent calls never see each other's
/// requests. Returns what `work` returned and its requests.
pub async fn counted<F: Future>(work: F) -> (F::Output, CallSnapshot) {
    let stats = Arc::new(CallStats::default());
    let out = SCOPE.scope(stats.clone(), work).await;
    (out, stats.snapshot())
}

/// Record in the current [`counted`] scope, if there is one.
pub(crate) fn record_in_scope(op: &'static str, elapsed: Duration, answer: Answer) {
    let _ = SCOPE.try_with(|s| s.add(op, elapsed, answer));
}

/// Upper bounds (seconds) of the latency histogram of every operation:
/// Prometheus' default buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a request ended, as counted by [`CallStats::record_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Answer {
    /// The service answered with this HTTP status.
    Status(u16),
    /// No answer: connection refused or reset, timeout, TLS failure.
    NoAnswer,
    /// Recorded through [`CallStats::record`], which knows only success.
    Unknown { ok: bool },
}

impl Answer {
    fn ok(self) -> bool {
        match self {
            Answer::Status(s) => (200..300).contains(&s),
            Answer::NoAnswer => false,
            Answer::Unknown { ok } => ok,
        }
    }

    /// The status as a label: `200`, `404`, `no_answer`, `ok`, `error`.
    pub fn label(self) -> String {
        match self {
            Answer::Status(s) => s.to_string(),
            Answer::NoAnswer => "no_answer".into(),
            Answer::Unknown { ok: true } => "ok".into(),
            Answer::Unknown { ok: false } => "error".into(),
        }
    }
}

/// Counters of one operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpStats {
    /// Requests sent.
    pub count: u64,
    /// Requests that ended in an error status or a transport failure.
    pub errors: u64,
    /// Sum of wall-clock latencies.
    pub total: Duration,
    /// Slowest single request.
    pub max: Duration,
    /// Requests per latency bucket (not cumulative): `buckets[i]` took at
    /// most [`LATENCY_BUCKETS`]`[i]` and more than the bound before; the
    /// last one took longer than every bound.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
}

/// The bucket of [`OpStats::buckets`] a latency falls in.
fn bucket_of(elapsed: Duration) -> usize {
    let secs = elapsed.as_secs_f64();
    LATENCY_BUCKETS
        .iter()
        .position(|&b| secs <= b)
        .unwrap_or(LATENCY_BUCKETS.len())
}

/// Live counters, shared by every clone of a session.
#[derive(Debug, Default)]
pub struct CallStats {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    ops: BTreeMap<&'static str, OpStats>,
    answers: BTreeMap<(&'static str, Answer), u64>,
}

impl CallStats {
    /// Record one finished request whose status is not known here (and in
    /// the current [`counted`] scope).
    pub fn record(&self, op: &'static str, elapsed: Duration, ok: bool) {
        self.record_answer(op, elapsed, Answer::Unknown { ok });
    }

    /// Record one finished request and how it was answered (and in the
    /// current [`counted`] scope).
    pub fn record_answer(&self, op: &'static str, elapsed: Duration, answer: Answer) {
        self.add(op, elapsed, answer);
        record_in_scope(op, elapsed, answer);
    }

    fn add(&self, op: &'static str, elapsed: Duration, answer: Answer) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = c.ops.entry(op).or_default();
        entry.count += 1;
        if !answer.ok() {
            entry.errors += 1;
        }
        entry.total += elapsed;
        entry.max = entry.max.max(elapsed);
        entry.buckets[bucket_of(elapsed)] += 1;
        *c.answers.entry((op, answer)).or_default() += 1;
    }

    /// A consistent copy of all counters.
    pub fn snapshot(&self) -> CallSnapshot {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        CallSnapshot {
            ops: c.ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            answers: c
                .answers
                .iter()
                .map(|((op, a), n)| ((op.to_string(), *a), *n))
                .collect(),
        }
    }
}

/// A point-in-time copy of [`CallStats`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CallSnapshot {
    /// Counters by operation name (`service.operation`).
    pub ops: BTreeMap<String, OpStats>,
    /// Requests by operation name and answer.
    pub answers: BTreeMap<(String, Answer), u64>,
}

impl CallSnapshot {
    /// Requests sent to one service (`"neutron"`, `"keystone"`).
    pub fn calls(&self, service: &str) -> u64 {
        self.ops
            .iter()
            .filter(|(name, _)| name.split('.').next() == Some(service))
            .map(|(_, s)| s.count)
            .sum()
    }

    /// Neutron requests sent, not counting the status polls of
    /// [`CallSnapshot::neutron_polls`].
    pub fn neutron_calls(&self) -> u64 {
        self.calls("neutron") - self.neutron_polls()
    }

    /// Neutron requests sent to poll a status (waiting for a port to go
    /// ACTIVE): how many depends on how fast the agent is, not on the
    /// driver, so they are counted apart.
    pub fn neutron_polls(&self) -> u64 {
        self.ops
            .iter()
            .filter(|(name, _)| name.starts_with(POLL_PREFIX))
            .map(|(_, s)| s.count)
            .sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CallSnapshot) -> CallSnapshot {
        let mut ops = BTreeMap::new();
        for (name, now) in &self.ops {
            let before = earlier.ops.get(name).copied().unwrap_or_default();
            if now.count > before.count {
                let mut buckets = now.buckets;
                for (b, was) in buckets.iter_mut().zip(before.buckets) {
                    *b = b.saturating_sub(was);
                }
                ops.insert(
                    name.clone(),
                    OpStats {
                        count: now.count - before.count,
                        errors: now.errors.saturating_sub(before.errors),
                        total: now.total.saturating_sub(before.total),
                        max: now.max,
                        buckets,
                    },
                );
            }
        }
        let answers = self
            .answers
            .iter()
            .filter_map(|(key, now)| {
                let before = earlier.answers.get(key).copied().unwrap_or_default();
                (*now > before).then(|| (key.clone(), now - before))
            })
            .collect();
        CallSnapshot { ops, answers }
    }

    /// Operation names with counts, e.g. `neutron.list_ports x2`, for logs.
    pub fn summary(&self) -> String {
        self.ops
            .iter()
            .map(|(name, s)| {
                if s.count == 1 {
                    name.clone()
                } else {
                    format!("{name} x{}", s.count)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_names_the_request_in_flight_then_the_last_failure() {
        let watch = Arc::new(InFlight::default());
        let w = watch.clone();
        watched(watch.clone(), async move {
            let g = request_started(|| "neutron POST /v2.0/ports".into());
            assert!(
                w.describe()
                    .unwrap()
                    .starts_with("neutron POST /v2.0/ports (no answer for 0 s")
            );
            g.failed(&"neutron did not answer POST /v2.0/ports within 15 s");
        })
        .await;
        assert_eq!(
            watch.describe().as_deref(),
            Some("neutron did not answer POST /v2.0/ports within 15 s")
        );
        // Outside a watch nothing is listed.
        let g = request_started(|| "x".into());
        g.failed(&"y");
    }

    #[tokio::test]
    async fn counted_scopes_see_only_their_own_requests() {
        let stats = Arc::new(CallStats::default());
        let one = |n: usize| {
            let stats = stats.clone();
            async move {
                for _ in 0..n {
                    stats.record("neutron.create_port", Duration::from_millis(1), true);
                    tokio::task::yield_now().await;
                }
            }
        };
        let ((_, a), (_, b)) = tokio::join!(counted(one(2)), counted(one(5)));
        assert_eq!((a.neutron_calls(), b.neutron_calls()), (2, 5));
        assert_eq!(stats.snapshot().neutron_calls(), 7);
    }

    #[test]
    fn delta_counts_only_new_calls() {
        let stats = CallStats::default();
        stats.record("neutron.list_ports", Duration::from_millis(5), true);
        let before = stats.snapshot();
        stats.record("neutron.list_ports", Duration::from_millis(7), true);
        stats.record("neutron.create_port", Duration::from_millis(9), false);
        stats.record("keystone.issue_token", Duration::from_millis(3), true);
        stats.record("neutron.poll_ports", Duration::from_millis(2), true);
        let delta = stats.snapshot().since(&before);
        assert_eq!(delta.neutron_calls(), 2);
        assert_eq!(delta.neutron_polls(), 1);
        assert_eq!(delta.calls("keystone"), 1);
        assert_eq!(delta.ops["neutron.create_port"].errors, 1);
        assert_eq!(
            delta.ops["neutron.list_ports"].total,
            Duration::from_millis(7)
        );
        assert_eq!(
            delta.summary(),
            "keystone.issue_token, neutron.create_port, neutron.list_ports, neutron.poll_ports"
        );
    }

    #[test]
    fn answers_and_latency_buckets_are_counted() {
        let stats = CallStats::default();
        let ms = Duration::from_millis;
        stats.record_answer("neutron.list_ports", ms(3), Answer::Status(200));
        let before = stats.snapshot();
        stats.record_answer("neutron.list_ports", ms(30), Answer::Status(200));
        stats.record_answer("neutron.show_port", ms(7), Answer::Status(404));
        stats.record_answer("neutron.show_port", ms(20_000), Answer::NoAnswer);
        let now = stats.snapshot();
        let list = now.ops["neutron.list_ports"];
        // 3 ms is in the first bucket (<= 5 ms), 30 ms in the fourth (<= 50 ms).
        assert_eq!((list.buckets[0], list.buckets[3]), (1, 1));
        assert_eq!(list.buckets.iter().sum::<u64>(), 2);
        let show = now.ops["neutron.show_port"];
        assert_eq!(
            (show.buckets[1], show.buckets[LATENCY_BUCKETS.len()]),
            (1, 1)
        );
        assert_eq!(show.errors, 2);
        let key = |op: &str, a| (op.to_string(), a);
        assert_eq!(
            now.answers[&key("neutron.list_ports", Answer::Status(200))],
            2
        );
        assert_eq!(now.answers[&key("neutron.show_port", Answer::NoAnswer)], 1);
        let delta = now.since(&before);
        assert_eq!(
            delta.answers[&key("neutron.list_ports", Answer::Status(200))],
            1
        );
        assert_eq!(delta.ops["neutron.list_ports"].buckets[0], 0);
        assert_eq!(Answer::NoAnswer.label(), "no_answer");
        assert_eq!(Answer::Status(409).label(), "409");
    }
}
