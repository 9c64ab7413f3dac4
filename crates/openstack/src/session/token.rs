//! The cached Keystone token, renewed without ever blocking a caller that
//! still holds a usable token.
//!
//! No lock is held across a token request: the cache is a plain mutex
//! taken for a few instructions, and a renewal in flight publishes its
//! outcome on a watch channel that callers wait on. So:
//!
//! - a fresh token is returned at once;
//! - a token due for renewal (within `reauth_margin` of its expiry) but
//!   still usable starts one renewal in the background and is used while
//!   it runs (a caller waits at most [`RENEW_WAIT`] for it); a renewal that
//!   fails is logged and the still-valid token stays in use, with the next
//!   attempt [`RETRY_AFTER`] later: a stalled or restarting Keystone slows
//!   no call while the token lasts;
//! - without a usable token (the first call, after a 401, or past expiry)
//!   the caller asks Keystone itself, and concurrent callers wait for that
//!   one request rather than each sending their own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::warn;

use crate::auth::Token;
use crate::error::{Error, Result};

/// How long a caller with a usable token waits for the renewal it started.
pub(super) const RENEW_WAIT: Duration = Duration::from_secs(1);
/// After a failed renewal, how long the still-valid token is used before
/// the next attempt.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(10);
/// A token this close to its expiry is not used: it may expire in flight.
const USABLE_MARGIN: Duration = Duration::from_secs(30);

/// What one token request ended with, as every waiter sees it.
type Outcome = Result<Arc<Token>, Arc<Error>>;

/// The token in use and the renewal in flight, if any.
#[derive(Default)]
pub(super) struct TokenCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    token: Option<Arc<Token>>,
    renewal: Option<Renewal>,
    /// When the last background renewal failed.
    failed_at: Option<Instant>,
    next_id: u64,
}

#[derive(Clone)]
struct Renewal {
    id: u64,
    outcome: watch::Receiver<Option<Outcome>>,
}

/// What a caller of [`TokenCache::step`] does next.
pub(super) enum Step {
    /// Use this token.
    Ready(Arc<Token>),
    /// Use this token, or the renewal's if it is done within [`RENEW_WAIT`].
    /// `start`: nobody is renewing yet; the caller spawns this renewal.
    Renewing {
        token: Arc<Token>,
        renewal: Waiter,
        start: Option<Leader>,
    },
    /// No usable token: wait for the renewal in flight.
    Wait(Waiter),
    /// No usable token and nobody asking: ask Keystone, then
    /// [`Leader::finish`].
    Lead(Leader),
}

/// Waits for a renewal's outcome.
pub(super) struct Waiter(watch::Receiver<Option<Outcome>>);

impl Waiter {
    /// The renewal's outcome; `None` if its leader was dropped mid-way.
    pub(super) async fn outcome(mut self) -> Option<Outcome> {
        match self.0.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        }
    }
}

/// The one caller asking Keystone for a token. Dropped before
/// [`Leader::finish`] (a cancelled call), it frees the slot for the next
/// caller.
pub(super) struct Leader {
    cache: Arc<TokenCache>,
    id: u64,
    tx: watch::Sender<Option<Outcome>>,
}

impl TokenCache {
    /// Decide what a caller needs to do to get a token.
    pub(super) fn step(self: &Arc<Self>, reauth_margin: Duration) -> Step {
        let now = jiff::Timestamp::now();
        let mut st = self.lock();
        let usable = st
            .token
            .clone()
            .filter(|t| !t.expires_within(now, USABLE_MARGIN));
        match usable {
            Some(t) if !t.expires_within(now, reauth_margin) => Step::Ready(t),
            Some(t) => {
                if let Some(r) = &st.renewal {
                    return Step::Renewing {
                        token: t,
                        renewal: Waiter(r.outcome.clone()),
                        start: None,
                    };
                }
                if st.failed_at.is_some_and(|f| f.elapsed() < RETRY_AFTER) {
                    return Step::Ready(t);
                }
                let leader = self.new_renewal(&mut st);
                let renewal = Waiter(leader.tx.subscribe());
                Step::Renewing {
                    token: t,
                    renewal,
                    start: Some(leader),
                }
            }
            None => match &st.renewal {
                Some(r) => Step::Wait(Waiter(r.outcome.clone())),
                None => Step::Lead(self.new_renewal(&mut st)),
            },
        }
    }

    fn new_renewal(self: &Arc<Self>, st: &mut State) -> Leader {
        st.next_id += 1;
        let (tx, rx) = watch::channel(None);
        st.renewal = Some(Renewal {
            id: st.next_id,
            outcome: rx,
        });
        Leader {
            cache: self.clone(),
            id: st.next_id,
            tx,
        }
    }

    /// Forget `stale` if it is still the cached token (Keystone or a
    /// service refused it).
    pub(super) fn invalidate(&self, stale: &Arc<Token>) {
        let mut st = self.lock();
        if st.token.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            st.token = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Leader {
    /// Store and publish what Keystone answered; the caller gets the
    /// token, or the error (shared when others waited for it too).
    pub(super) fn finish(self, issued: Result<Token>) -> Result<Arc<Token>> {
        let mut st = self.cache.lock();
        if st.renewal.as_ref().is_some_and(|r| r.id == self.id) {
            st.renewal = None;
        }
        match issued {
            Ok(token) => {
                let token = Arc::new(token);
                st.token = Some(token.clone());
                st.failed_at = None;
                drop(st);
                self.tx.send_replace(Some(Ok(token.clone())));
                Ok(token)
            }
            Err(e) => {
                st.failed_at = Some(Instant::now());
                let still_valid = st.token.as_ref().and_then(|t| t.expires_at);
                drop(st);
                if let Some(until) = still_valid {
                    warn!(error = %crate::chain(&e), valid_until = %until, "keystone token renewal failed; the current token stays in use");
                }
                if self.tx.receiver_count() == 0 {
                    return Err(e);
                }
                let shared = Arc::new(e);
                self.tx.send_replace(Some(Err(shared.clone())));
                Err(Error::Shared(shared))
            }
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut st = self.cache.lock();
        if st.renewal.as_ref().is_some_and(|r| r.id == self.id) {
            st.renewal = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(valid_for: Duration) -> Token {
        Token {
            value: secrecy::SecretString::from("t"),
            expires_at: Some(
                jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::try_from(valid_for).unwrap())
                    .unwrap(),
            ),
            project_id: None,
            user_id: "u".into(),
            roles: vec![],
            catalog: vec![],
        }
    }

    const MARGIN: Duration = Duration::from_secs(300);

    #[test]
    fn the_first_caller_leads_and_the_others_wait() {
        let cache = Arc::new(TokenCache::default());
        let Step::Lead(leader) = cache.step(MARGIN) else {
            panic!("no token: the first caller asks Keystone");
        };
        assert!(matches!(cache.step(MARGIN), Step::Wait(_)));
        let t = leader.finish(Ok(token(Duration::from_secs(3600)))).unwrap();
        assert!(matches!(cache.step(MARGIN), Step::Ready(r) if Arc::ptr_eq(&r, &t)));
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_the_still_valid_token() {
        let cache = Arc::new(TokenCache::default());
        let Step::Lead(leader) = cache.step(MARGIN) else {
            panic!()
        };
        // Valid for 2 minutes: due for renewal, still usable.
        let old = leader.finish(Ok(token(Duration::from_secs(120)))).unwrap();
        let Step::Renewing {
            token,
            renewal,
            start: Some(leader),
        } = cache.step(MARGIN)
        else {
            panic!("a renewal starts")
        };
        assert!(Arc::ptr_eq(&token, &old));
        // A second caller joins the renewal, starts none.
        assert!(matches!(
            cache.step(MARGIN),
            Step::Renewing { start: None, .. }
        ));
        let err = Error::NoReply {
            service: "keystone",
            detail: "stalled".into(),
        };
        assert!(leader.finish(Err(err)).is_err());
        assert!(matches!(renewal.outcome().await, Some(Err(_))));
        // Failed just now: the old token, no new attempt for a while.
        assert!(matches!(cache.step(MARGIN), Step::Ready(r) if Arc::ptr_eq(&r, &old)));
    }

    #[tokio::test]
    async fn a_dropped_leader_frees_the_slot_and_wakes_the_waiters() {
        let cache = Arc::new(TokenCache::default());
        let Step::Lead(leader) = cache.step(MARGIN) else {
            panic!()
        };
        let Step::Wait(waiter) = cache.step(MARGIN) else {
            panic!()
        };
        drop(leader);
        assert!(waiter.outcome().await.is_none());
        assert!(matches!(cache.step(MARGIN), Step::Lead(_)));
    }

    #[test]
    fn a_refused_token_is_forgotten() {
        let cache = Arc::new(TokenCache::default());
        let Step::Lead(leader) = cache.step(MARGIN) else {
            panic!()
        };
        let t = leader.finish(Ok(token(Duration::from_secs(3600)))).unwrap();
        cache.invalidate(&t);
        assert!(matches!(cache.step(MARGIN), Step::Lead(_)));
    }
}
