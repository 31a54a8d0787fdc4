//! Runtime-adjustable fault injection: failed writes (429 with Retry-After, or 500), response delays, expired
//! `continue` tokens (410 Gone, as after an etcd compaction), and SubjectAccessReviews answered from an
//! authorizer cache that has not caught up yet.

use std::sync::Mutex;
use std::time::Duration;

/// How a selected write fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WriteFault {
    /// 429 TooManyRequests with a `Retry-After` header of this many seconds (like the max-in-flight filter).
    TooManyRequests { retry_after_seconds: u32 },
    /// 500 InternalError.
    InternalError,
}

#[derive(Debug, Default)]
struct State {
    write: Option<(WriteFault, f64)>,
    delay: Duration,
    counter: u64,
    /// (reviews left, the answer they get).
    stale_reviews: Option<(u64, bool)>,
    /// List requests with a `continue` token still to answer 410 Gone.
    expire_continues: u64,
    /// 410s answered so far.
    continues_expired: u64,
}

/// Faults shared between the sandbox (which sets them) and the running API server (which applies them).
/// Every method takes `&self`; changes apply to the next request.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail `fraction` (0.0..=1.0) of writes (POST/PUT/PATCH/DELETE) with 429 and `Retry-After: retry_after_seconds`.
    pub fn fail_writes_too_many_requests(&self, fraction: f64, retry_after_seconds: u32) {
        self.lock().write = Some((
            WriteFault::TooManyRequests {
                retry_after_seconds,
            },
            fraction.clamp(0.0, 1.0),
        ));
    }

    /// Fail `fraction` (0.0..=1.0) of writes with 500 InternalError.
    pub fn fail_writes_internal_error(&self, fraction: f64) {
        self.lock().write = Some((WriteFault::InternalError, fraction.clamp(0.0, 1.0)));
    }

    /// Stop failing writes.
    pub fn clear_write_faults(&self) {
        self.lock().write = None;
    }

    /// Delay every response by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Stop delaying responses.
    pub fn clear_delay(&self) {
        self.lock().delay = Duration::ZERO;
    }

    /// The next `count` SubjectAccessReviews and LocalSubjectAccessReviews answer `allowed`, whatever RBAC says: a
    /// real kube-apiserver's RBAC authorizer reads Roles and bindings from informer caches, so for a moment after
    /// a change (longer behind a load balancer) it still answers as before the change. Self reviews are not
    /// affected.
    pub fn stale_access_reviews(&self, count: u64, allowed: bool) {
        self.lock().stale_reviews = (count > 0).then_some((count, allowed));
    }

    /// The stale answers still to give: `(count, allowed)`.
    pub fn access_review_pending(&self) -> Option<(u64, bool)> {
        self.lock().stale_reviews
    }

    /// The answer the next (Local)SubjectAccessReview gets instead of RBAC's, if a stale answer is pending.
    pub(crate) fn access_review_fault(&self) -> Option<bool> {
        let mut s = self.lock();
        let (left, allowed) = s.stale_reviews?;
        s.stale_reviews = (left > 1).then_some((left - 1, allowed));
        Some(allowed)
    }

    /// Answer the next `count` list requests that carry a `continue` token with 410 Gone (`Expired`), as
    /// kube-apiserver does once etcd compacted the revision the token points at.
    pub fn expire_continue_tokens(&self, count: u64) {
        self.lock().expire_continues = count;
    }

    /// How many list requests were answered 410 by [`Faults::expire_continue_tokens`] so far.
    pub fn continue_tokens_expired(&self) -> u64 {
        self.lock().continues_expired
    }

    /// Remove every fault.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.write = None;
        s.delay = Duration::ZERO;
        s.stale_reviews = None;
        s.expire_continues = 0;
    }

    /// Decide whether this list request with a continue token gets 410 Gone.
    pub(crate) fn continue_expired(&self) -> bool {
        let mut s = self.lock();
        if s.expire_continues == 0 {
            return false;
        }
        s.expire_continues -= 1;
        s.continues_expired += 1;
        true
    }

    /// The current response delay.
    pub fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// Decide whether this write fails. Deterministic: with fraction f, write n fails when
    /// `floor(n*f) != floor((n-1)*f)`, so exactly that share of writes fails, spread evenly.
    pub(crate) fn write_fault(&self) -> Option<WriteFault> {
        let mut s = self.lock();
        let (fault, fraction) = s.write?;
        s.counter += 1;
        let n = s.counter as f64;
        if (n * fraction).floor() != ((n - 1.0) * fraction).floor() {
            Some(fault)
        } else {
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_exact_over_a_window() {
        let f = Faults::new();
        f.fail_writes_internal_error(0.25);
        let failed = (0..100).filter(|_| f.write_fault().is_some()).count();
        assert_eq!(failed, 25);
        f.fail_writes_too_many_requests(1.0, 3);
        assert_eq!(
            f.write_fault(),
            Some(WriteFault::TooManyRequests {
                retry_after_seconds: 3
            })
        );
        f.clear_write_faults();
        assert_eq!(f.write_fault(), None);
        f.set_delay(Duration::from_millis(5));
        assert_eq!(f.delay(), Duration::from_millis(5));
        f.expire_continue_tokens(2);
        assert!(f.continue_expired() && f.continue_expired() && !f.continue_expired());
        assert_eq!(f.continue_tokens_expired(), 2);
        f.clear();
        assert_eq!(f.delay(), Duration::ZERO);
        f.stale_access_reviews(2, false);
        assert_eq!(f.access_review_fault(), Some(false));
        assert_eq!(f.access_review_fault(), Some(false));
        assert_eq!(f.access_review_fault(), None);
        f.stale_access_reviews(5, true);
        f.clear();
        assert_eq!(f.access_review_fault(), None);
    }
}
