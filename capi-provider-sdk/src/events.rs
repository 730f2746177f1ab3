//! Publishing `events.k8s.io/v1` Events with client-go's aggregation, in bounded memory.
//!
//! kube-runtime's `events::Recorder` aggregates repeats of an event (same type, action,
//! reason, regarding and related object, reporter) into a series, as client-go's
//! `tools/events` recorder does: the first occurrence creates an Event, a repeat within six
//! minutes patches `series.count` and `series.lastObservedTime` on it. To do so it keeps a
//! clone of the whole Event it sent (regarding reference, note, names) plus its key (a second
//! copy of the reference) for six minutes, in a map that has no size bound and no setting: the
//! TTL is a constant and the cache is private. A provider publishes a `Provisioned` event per
//! machine, so that map held about 1.5–2 KiB per machine for six minutes after each one was
//! provisioned, the biggest share of the SDK's memory per object after the informer caches.
//!
//! [`EventRecorder`] keeps the same behaviour (same key fields, same six-minute window, same
//! series fields, same Event names) but only what a repeat needs: a 128-bit hash of the key,
//! the Event's name, the count and the time it was last seen, about 100 bytes. The trade-offs:
//!
//! - The number of series remembered is bounded ([`MAX_SERIES`], client-go's
//!   `tools/record` LRU size). Past it, the least recently seen series is forgotten first, and
//!   its next repeat creates a new Event instead of counting on the old one: what client-go
//!   does too when its cache overflows. Nothing is lost, the Events are only less compact.
//! - The key is a hash, not the fields themselves: two different keys would have to collide
//!   on 128 bits of randomly keyed SipHash for a repeat to count on the wrong Event.
//! - A repeat whose Event the server no longer has (Events expire after an hour by default)
//!   creates a new one, as client-go does, where kube's recorder would fail.
//! - Nothing is sent in the background: a series is only patched when it repeats (client-go
//!   also refreshes long-running series every 30 minutes; kube's recorder does not either).
//!
//! Writing this rather than using kube's type is a trade of ~120 lines for that memory;
//! the input types ([`Event`], [`EventType`]) are kube's, so moving back is a one-line change
//! should kube's recorder grow a bound.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

/// How long after its last occurrence a repeat still counts on the same Event (kube-runtime's
/// and client-go's six minutes).
pub(crate) const SERIES_TTL: Duration = Duration::from_secs(6 * 60);

/// How many series are remembered at most (client-go `tools/record`'s `maxLruCacheEntries`).
pub(crate) const MAX_SERIES: usize = 4096;

/// The most an Event's note may hold (the API server rejects longer ones).
const MAX_NOTE_BYTES: usize = 1024;

/// How often expired series are swept out (otherwise only when the map is full).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Publishes Events for any object, aggregating repeats into series. Cheap to clone.
#[derive(Clone)]
pub(crate) struct EventRecorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("controller", &self.inner.controller)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: Client,
    controller: String,
    instance: String,
    hashers: (RandomState, RandomState),
    series: Mutex<SeriesCache>,
}

type Key = (u64, u64);

struct Series {
    /// The Event the series counts on.
    name: Box<str>,
    count: i32,
    last_seen: Instant,
}

struct SeriesCache {
    entries: HashMap<Key, Series>,
    next_sweep: Instant,
    capacity: usize,
}

impl SeriesCache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            next_sweep: Instant::now() + SWEEP_EVERY,
            capacity,
        }
    }

    /// The Event name and next count of a live series of `key`.
    fn repeat(&mut self, key: &Key, now: Instant) -> Option<(Box<str>, i32)> {
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let s = self.entries.get(key)?;
        (now.saturating_duration_since(s.last_seen) < SERIES_TTL)
            .then(|| (s.name.clone(), s.count.saturating_add(1)))
    }

    fn record(&mut self, key: Key, series: Series) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.sweep(series.last_seen);
            if self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, series);
    }

    fn sweep(&mut self, now: Instant) {
        self.entries
            .retain(|_, s| now.saturating_duration_since(s.last_seen) < SERIES_TTL);
        self.next_sweep = now + SWEEP_EVERY;
    }
}

impl EventRecorder {
    /// Events reported by `controller`; `instance` defaults to the controller's name, as with
    /// kube's recorder.
    pub(crate) fn new(client: Client, controller: String, instance: Option<String>) -> Self {
        Self::with_capacity(client, controller, instance, MAX_SERIES)
    }

    fn with_capacity(
        client: Client,
        controller: String,
        instance: Option<String>,
        capacity: usize,
    ) -> Self {
        let instance = instance.unwrap_or_else(|| controller.clone());
        Self {
            inner: Arc::new(Inner {
                client,
                controller,
                instance,
                hashers: (RandomState::new(), RandomState::new()),
                series: Mutex::new(SeriesCache::new(capacity)),
            }),
        }
    }

    /// kube-runtime's event key: type, action, reason, regarding and related object (the
    /// reporter is the same for every event of a recorder).
    fn key(&self, ev: &Event, regarding: &ObjectReference) -> Key {
        let hash = |b: &RandomState| {
            let mut h = b.build_hasher();
            ev.type_.hash(&mut h);
            ev.action.hash(&mut h);
            ev.reason.hash(&mut h);
            hash_ref(regarding, &mut h);
            if let Some(related) = &ev.secondary {
                hash_ref(related, &mut h);
            }
            h.finish()
        };
        (hash(&self.inner.hashers.0), hash(&self.inner.hashers.1))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        self.inner
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes `ev` about `regarding`: a new Event, or the next count of a series.
    pub(crate) async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = self.key(ev, regarding);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.inner.client.clone(), namespace);
        let repeat = self.cache().repeat(&key, Instant::now());
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({"series": {
                "count": count,
                "lastObservedTime": MicroTime(Timestamp::now()),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    let series = Series {
                        name,
                        count,
                        last_seen: Instant::now(),
                    };
                    self.cache().record(key, series);
                    return Ok(());
                }
                // The Event expired on the server: start a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.generate(ev, regarding);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.or(event.metadata.name);
        if let Some(name) = name {
            let series = Series {
                name: name.into_boxed_str(),
                count: 1,
                last_seen: Instant::now(),
            };
            self.cache().record(key, series);
        }
        Ok(())
    }

    /// The Event kube-runtime's recorder would create for the first occurrence.
    fn generate(&self, ev: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = Timestamp::now();
        let note = ev.note.as_deref().map(|n| truncate(n, MAX_NOTE_BYTES));
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note,
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(&self.inner.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.inner.controller.clone()),
            reporting_instance: Some(self.inner.instance.clone()),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            related: ev.secondary.clone(),
            ..K8sEvent::default()
        }
    }
}

/// The reference fields kube-runtime's recorder compares.
fn hash_ref(r: &ObjectReference, h: &mut impl Hasher) {
    r.api_version.hash(h);
    r.kind.hash(h);
    r.name.hash(h);
    r.namespace.hash(h);
    r.uid.hash(h);
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, count: i32, last_seen: Instant) -> Series {
        Series {
            name: name.into(),
            count,
            last_seen,
        }
    }

    #[test]
    fn a_repeat_within_the_window_counts_on_the_same_event() {
        let mut c = SeriesCache::new(8);
        let t0 = Instant::now();
        c.record((1, 1), series("a.1", 1, t0));
        assert_eq!(c.repeat(&(1, 1), t0), Some(("a.1".into(), 2)));
        assert_eq!(c.repeat(&(2, 2), t0), None);
        assert_eq!(c.repeat(&(1, 1), t0 + SERIES_TTL), None);
    }

    #[test]
    fn past_the_bound_the_least_recently_seen_series_goes_first() {
        let mut c = SeriesCache::new(2);
        let t0 = Instant::now();
        c.record((1, 1), series("a", 1, t0));
        c.record((2, 2), series("b", 1, t0 + Duration::from_secs(1)));
        c.record((1, 1), series("a", 2, t0 + Duration::from_secs(2)));
        c.record((3, 3), series("c", 1, t0 + Duration::from_secs(3)));
        assert_eq!(c.entries.len(), 2);
        assert!(c.entries.contains_key(&(1, 1)));
        assert!(c.entries.contains_key(&(3, 3)));
    }

    #[test]
    fn expired_series_are_swept() {
        let mut c = SeriesCache::new(8);
        let t0 = Instant::now();
        c.record((1, 1), series("a", 1, t0));
        c.next_sweep = t0;
        assert_eq!(c.repeat(&(2, 2), t0 + SERIES_TTL), None);
        assert!(c.entries.is_empty());
    }

    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    async fn env() -> (capi_testkit::env::TestEnv, Client) {
        let env = capi_testkit::env::TestEnv::builder().start().await.unwrap();
        let client = env.client();
        (env, client)
    }

    fn regarding(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn event(reason: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some("n".into()),
            action: reason.into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn repeats_become_a_series_and_an_expired_event_is_created_again() {
        let (_env, client) = env().await;
        let events: Api<K8sEvent> = Api::namespaced(client.clone(), "default");
        let rec = EventRecorder::new(client, "test".into(), None);
        rec.publish(&event("Provisioned"), &regarding("a"))
            .await
            .unwrap();
        rec.publish(&event("Provisioned"), &regarding("a"))
            .await
            .unwrap();
        rec.publish(&event("Provisioned"), &regarding("a"))
            .await
            .unwrap();
        rec.publish(&event("Other"), &regarding("a")).await.unwrap();
        rec.publish(&event("Provisioned"), &regarding("b"))
            .await
            .unwrap();
        let list = events.list(&Default::default()).await.unwrap().items;
        assert_eq!(list.len(), 3, "{list:?}");
        let series = list
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some("Provisioned")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("a")
            })
            .unwrap();
        assert_eq!(series.series.as_ref().map(|s| s.count), Some(3));
        assert_eq!(series.reporting_controller.as_deref(), Some("test"));
        assert_eq!(series.reporting_instance.as_deref(), Some("test"));

        // The server forgot the Event: the next repeat starts a new one.
        for e in &list {
            events
                .delete(&e.metadata.name.clone().unwrap(), &Default::default())
                .await
                .unwrap();
        }
        rec.publish(&event("Provisioned"), &regarding("a"))
            .await
            .unwrap();
        let list = events.list(&Default::default()).await.unwrap().items;
        assert_eq!(list.len(), 1);
        assert!(list[0].series.is_none());
    }
}
