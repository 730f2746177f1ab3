//! Per-object exponential backoff for failed reconciles.
//!
//! kube-runtime's `error_policy` returns a fixed action; client-go's controllers back off per
//! item (5 ms doubling up to 1000 s). This keeps a failure count per object key, resets it on
//! success, and computes the next delay.
//!
//! ```
//! use std::time::Duration;
//! use capi_provider_sdk::backoff::PerObjectBackoff;
//!
//! let b = PerObjectBackoff::new(Duration::from_millis(5), Duration::from_secs(1000));
//! assert_eq!(b.failed("ns/m1"), Duration::from_millis(5));
//! assert_eq!(b.failed("ns/m1"), Duration::from_millis(10));
//! assert_eq!(b.failed("ns/m2"), Duration::from_millis(5));
//! b.succeeded("ns/m1");
//! assert_eq!(b.failed("ns/m1"), Duration::from_millis(5));
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Failure counts per object and the delay they imply.
#[derive(Debug)]
pub struct PerObjectBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for PerObjectBackoff {
    /// controller-runtime's defaults: 5 ms doubling up to 1000 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(5), Duration::from_secs(1000))
    }
}

impl PerObjectBackoff {
    /// Delays start at `base`, double per consecutive failure, and stop growing at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: &str) -> Duration {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = map.entry(key.to_owned()).or_insert(0);
        let exp = (*n).min(40);
        *n = n.saturating_add(1);
        self.base
            .checked_mul(1u32 << exp.min(31))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        let map = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_capped() {
        let b = PerObjectBackoff::new(Duration::from_millis(5), Duration::from_secs(1));
        let delays: Vec<_> = (0..50).map(|_| b.failed("k")).collect();
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(1));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(b.failures("k"), 50);
    }
}
