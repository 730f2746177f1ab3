//! The object store: one global resourceVersion, server-owned metadata, no-op detection,
//! deletion with finalizers, a bounded event history and the fan-out watches read.
//!
//! Every operation runs under one lock, so each write is atomic and events are totally ordered
//! by resourceVersion, as etcd orders them.
//!
//! Objects are kept encoded, as etcd keeps them ([`StoredObject`]): a decoded `serde_json::Value`
//! takes about three times the bytes of its JSON, and the encoding is what a GET answers and a
//! watch event carries, shared (not copied) between the store, the event history and every
//! watcher.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::task::AtomicWaker;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::errors::ApiError;
use super::resources::{Registry, Resource};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// An object as the store keeps it: its JSON encoding, and what scans of the whole store
/// (garbage collector, namespace checks) and the fast paths of GET and watch read without
/// decoding it.
#[derive(Debug)]
pub struct StoredObject {
    json: Bytes,
    api_version: Box<str>,
    kind: Box<str>,
    uid: Box<str>,
    owners: Box<[Box<str>]>,
    deleting: bool,
}

impl StoredObject {
    /// Encodes `obj`.
    pub fn new(obj: &Value) -> Self {
        let m = &obj["metadata"];
        let text = |v: &Value| Box::from(v.as_str().unwrap_or_default());
        // Straight into bytes (not through `Display`'s formatter), in a buffer large enough for
        // most objects so that it does not grow (and copy) step by step.
        let mut json = Vec::with_capacity(4096);
        if serde_json::to_writer(&mut json, obj).is_err() {
            // A `Value` always serializes (its map keys are strings); never taken.
            json = obj.to_string().into_bytes();
        }
        Self {
            // Exactly as long as the JSON: the encoder's spare capacity would stay allocated.
            json: Bytes::from(json.into_boxed_slice()),
            api_version: text(&obj["apiVersion"]),
            kind: text(&obj["kind"]),
            uid: text(&m["uid"]),
            owners: m["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| text(&o["uid"]))
                .collect(),
            deleting: m["deletionTimestamp"].is_string(),
        }
    }

    /// The JSON, exactly as a client is sent it when it asks for `apiVersion`/`kind` (see
    /// [`Self::is`]).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// Whether the encoding already carries this `apiVersion` and `kind`.
    pub fn is(&self, api_version: &str, kind: &str) -> bool {
        *self.api_version == *api_version && *self.kind == *kind
    }

    /// The object, decoded (the store wrote the JSON, so it decodes; `null` if it did not).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }

    fn owned_by(&self, uid: &str) -> bool {
        self.owners.iter().any(|o| **o == *uid)
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Group of the object.
    pub group: String,
    /// Plural of the object.
    pub plural: String,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub type_: EventType,
    /// The object after the change (before it, for deletions), in the storage version.
    pub object: Arc<StoredObject>,
    /// The object before the change (for selector transitions).
    pub old: Option<Arc<StoredObject>>,
}

/// An event as the open watches are sent it: with the frame of the watchers that see the
/// object as stored, encoded by the first of them and shared (not copied) by the others.
#[derive(Debug)]
pub struct Delivery {
    pub(crate) event: Arc<WatchEvent>,
    pub(crate) stored_frame: OnceLock<Bytes>,
}

impl Delivery {
    /// The change itself.
    pub fn event(&self) -> &WatchEvent {
        &self.event
    }
}

/// How many deliveries the fan-out keeps for watchers behind: one further behind is told to
/// relist ([`RecvError::Lagged`]).
const FAN_OUT_CAP: usize = 65_536;

/// One link of the fan-out: a delivery and, once there is one, the next. The fan-out owns the
/// links (the last [`FAN_OUT_CAP`]); a watcher holds only the one it read last, and reaches the
/// next without a lock (a load and a reference count).
#[derive(Debug)]
struct Link {
    /// `None` only in the first link, which no watcher is sent.
    delivery: Option<Delivery>,
    next: OnceLock<Weak<Link>>,
}

/// The fan-out of events to the open watches. A write appends a link and wakes every watcher;
/// a watcher follows the links at its own pace, so no lock is taken per event and watcher (as
/// a broadcast channel's waiter list takes one each time a watcher catches up).
#[derive(Debug)]
struct FanOut {
    state: Mutex<FanOutState>,
    /// The store is gone: watchers end after the deliveries they have not read.
    closed: AtomicBool,
}

#[derive(Debug)]
struct FanOutState {
    /// The last link; a new subscription starts after it.
    tail: Arc<Link>,
    /// The links kept for the watchers behind, oldest first.
    kept: VecDeque<Arc<Link>>,
    /// One waker per subscription.
    watchers: Vec<Arc<AtomicWaker>>,
}

impl FanOut {
    fn new() -> Self {
        Self {
            state: Mutex::new(FanOutState {
                tail: Arc::new(Link {
                    delivery: None,
                    next: OnceLock::new(),
                }),
                kept: VecDeque::new(),
                watchers: Vec::new(),
            }),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FanOutState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `event` to every subscription (nothing to do without one).
    fn publish(&self, event: Arc<WatchEvent>) {
        let mut s = self.lock();
        if s.watchers.is_empty() {
            return;
        }
        let link = Arc::new(Link {
            delivery: Some(Delivery {
                event,
                stored_frame: OnceLock::new(),
            }),
            next: OnceLock::new(),
        });
        // Only here, under the lock, is a link's `next` set, once.
        let _ = s.tail.next.set(Arc::downgrade(&link));
        s.kept.push_back(link.clone());
        if s.kept.len() > FAN_OUT_CAP {
            s.kept.pop_front();
        }
        s.tail = link;
        for w in &s.watchers {
            w.wake();
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for w in &self.lock().watchers {
            w.wake();
        }
    }
}

/// Why a [`Subscription`] has no more events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The subscription fell so far behind that events it did not read are gone.
    Lagged,
    /// The store is gone.
    Closed,
}

/// Every event after the moment [`Store::subscribe`] was called, in order.
///
/// ```
/// use std::task::{Context, Poll, Waker};
/// use capi_testkit::server::store::Store;
///
/// let (store, _housekeeping) = Store::new(100);
/// let mut events = store.subscribe();
/// let mut cx = Context::from_waker(Waker::noop());
/// // Nothing happened since.
/// assert!(matches!(events.poll_recv(&mut cx), Poll::Pending));
/// ```
#[derive(Debug)]
pub struct Subscription {
    fan_out: Arc<FanOut>,
    /// The link read last.
    at: Arc<Link>,
    waker: Arc<AtomicWaker>,
}

impl Subscription {
    /// The next event, waking `cx` when there is one if there is none yet.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<&Delivery, RecvError>> {
        loop {
            let next = match self.at.next.get() {
                Some(next) => next,
                None => {
                    self.waker.register(cx.waker());
                    // Looked at again: a link added before the registration woke nobody.
                    match self.at.next.get() {
                        Some(next) => next,
                        None if self.fan_out.closed.load(Ordering::SeqCst) => {
                            return Poll::Ready(Err(RecvError::Closed));
                        }
                        None => return Poll::Pending,
                    }
                }
            };
            let Some(next) = next.upgrade() else {
                return Poll::Ready(Err(RecvError::Lagged));
            };
            self.at = next;
            if self.at.delivery.is_some() {
                break;
            }
        }
        match &self.at.delivery {
            Some(d) => Poll::Ready(Ok(d)),
            None => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut s = self.fan_out.lock();
        s.watchers.retain(|w| !Arc::ptr_eq(w, &self.waker));
        if s.watchers.is_empty() {
            // Nobody is behind: the links kept are for nobody.
            s.kept.clear();
        }
    }
}

/// Work for the controllers inside the server (garbage collector, namespace controller).
#[derive(Debug, Clone)]
pub enum Housekeeping {
    /// An object with this uid is gone: collect its dependents.
    OwnerGone(String),
    /// An owner is being deleted in the foreground.
    Foreground(ObjectKey),
    /// An owner is being deleted orphaning its dependents.
    Orphan(ObjectKey),
    /// A namespace is terminating: empty it, then finalize it.
    Namespace(String),
    /// A CRD is being deleted: delete its objects, then the CRD.
    Crd(String),
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    /// API group.
    pub group: String,
    /// Plural resource.
    pub plural: String,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

type Key = (String, String);

/// Everything behind the lock.
#[derive(Debug)]
pub struct State {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Served resources.
    pub registry: Registry,
    objects: HashMap<Key, BTreeMap<Key, Arc<StoredObject>>>,
    history: VecDeque<Arc<WatchEvent>>,
    history_cap: usize,
    /// The oldest resourceVersion a watch may start after.
    pub compacted_rv: u64,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    /// Every change, to the open watches.
    fan_out: Arc<FanOut>,
    housekeeping: mpsc::UnboundedSender<Housekeeping>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.fan_out.close();
    }
}

/// How a delete ended.
#[derive(Debug)]
pub enum Deletion {
    /// Gone now (the last state).
    Removed(Value),
    /// Marked for deletion, waiting for finalizers (the updated object).
    Pending(Value),
}

/// Options of a DELETE.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Background, Foreground, Orphan.
    pub propagation: Option<String>,
    /// Precondition on uid.
    pub uid: Option<String>,
    /// Precondition on resourceVersion.
    pub resource_version: Option<String>,
    /// Do not persist.
    pub dry_run: bool,
}

/// Now, to the second, as metadata timestamps are written (`2026-01-02T03:04:05Z`): formatted
/// once a second on each thread, not on every write.
pub(crate) fn now() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((0, String::new())) };
    }
    let t = k8s_openapi::jiff::Timestamp::now();
    let second = t.as_second();
    LAST.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            *at = second;
            *text = k8s_openapi::jiff::Timestamp::from_second(second)
                .unwrap_or(t)
                .to_string();
        }
        text.clone()
    })
}

fn new_uid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 hex digits.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut uid = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            uid.push('-');
        }
        uid.push(char::from(HEX[usize::from(b >> 4)]));
        uid.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    uid
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let uid = new_uid();
    uid.bytes()
        .filter(u8::is_ascii_hexdigit)
        .take(5)
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The part of an object that decides `generation`: everything but metadata (and status when
/// the status subresource is on).
fn generation_relevant(obj: &Value, status_subresource: bool) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "apiVersion", "kind"] {
            m.remove(k);
        }
        if status_subresource {
            m.remove("status");
        }
    }
    o
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"][key].as_str()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

impl Store {
    /// An empty store with the built-in kinds; `history_cap` events are kept for watches.
    pub fn new(history_cap: usize) -> (Arc<Self>, mpsc::UnboundedReceiver<Housekeeping>) {
        let (housekeeping, rx) = mpsc::unbounded_channel();
        // Start high so that a client outliving a restart gets 410s instead of silence.
        let start = 1000;
        let store = Arc::new(Self {
            state: Mutex::new(State {
                rv: start,
                registry: Registry::new(),
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_cap,
                compacted_rv: start,
            }),
            fan_out: Arc::new(FanOut::new()),
            housekeeping,
        });
        (store, rx)
    }

    /// The lock (poisoning is survivable: the state is always consistent between statements).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new subscription to every event after the current resourceVersion.
    pub fn subscribe(&self) -> Subscription {
        let waker = Arc::new(AtomicWaker::new());
        let mut s = self.fan_out.lock();
        s.watchers.push(waker.clone());
        Subscription {
            fan_out: self.fan_out.clone(),
            at: s.tail.clone(),
            waker,
        }
    }

    /// Schedules work for the in-server controllers.
    pub fn schedule(&self, work: Housekeeping) {
        let _ = self.housekeeping.send(work);
    }

    /// Forgets all history (tests of relist paths: the next resumed watch gets 410).
    pub fn compact(&self) {
        let mut s = self.lock();
        s.history.clear();
        s.compacted_rv = s.rv;
    }

    fn emit(&self, state: &mut State, event: WatchEvent) {
        let event = Arc::new(event);
        state.history.push_back(event.clone());
        while state.history.len() > state.history_cap {
            if let Some(e) = state.history.pop_front() {
                state.compacted_rv = e.rv;
            }
        }
        self.fan_out.publish(event);
    }

    /// Creates an object (already decoded, defaulted and validated) in the storage version.
    pub fn create(
        &self,
        res: &Resource,
        namespace: &str,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.create_encoded(res, namespace, obj, dry_run)
            .map(|(obj, _)| obj)
    }

    /// [`Self::create`], also returning the stored encoding (`None` for a dry run).
    pub fn create_encoded(
        &self,
        res: &Resource,
        namespace: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<(Value, Option<Arc<StoredObject>>), ApiError> {
        let mut s = self.lock();
        if res.namespaced {
            let who = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.check_namespace(&s, namespace, &res.plural, &who)?;
        }
        let key = res.storage_key();
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        if name.is_empty() {
            let prefix = meta_str(&obj, "generateName").unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &res.kind,
                    &res.group,
                    "",
                    &[(
                        "metadata.name".into(),
                        "FieldValueRequired",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            let prefix: String = prefix.chars().take(58).collect();
            name = (0..8)
                .map(|_| format!("{prefix}{}", random_suffix()))
                .find(|n| {
                    !s.objects
                        .get(&key)
                        .is_some_and(|m| m.contains_key(&(namespace.to_owned(), n.clone())))
                })
                .unwrap_or_default();
        }
        let id = (namespace.to_owned(), name.clone());
        if s.objects.get(&key).is_some_and(|m| m.contains_key(&id)) {
            return Err(ApiError::already_exists(&res.plural, &res.group, &name));
        }
        let m = obj
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            })
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        m.insert("name".into(), json!(name));
        if res.namespaced {
            m.insert("namespace".into(), json!(namespace));
        } else {
            m.remove("namespace");
        }
        for k in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now()));
        if !res.builtin || res.plural == "customresourcedefinitions" {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        if dry_run {
            m.remove("resourceVersion");
            return Ok((obj, None));
        }
        s.rv += 1;
        let rv = s.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let stored = Arc::new(StoredObject::new(&obj));
        s.objects
            .entry(key.clone())
            .or_default()
            .insert(id, stored.clone());
        self.emit(
            &mut s,
            WatchEvent {
                rv,
                group: key.0,
                plural: key.1,
                namespace: namespace.to_owned(),
                type_: EventType::Added,
                object: stored.clone(),
                old: None,
            },
        );
        Ok((obj, Some(stored)))
    }

    fn check_namespace(
        &self,
        s: &State,
        namespace: &str,
        plural: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let ns = s
            .objects
            .get(&(String::new(), "namespaces".to_owned()))
            .and_then(|m| m.get(&(String::new(), namespace.to_owned())));
        match ns {
            None => Err(ApiError::not_found("namespaces", "", namespace)),
            Some(n) if n.deleting => Err(ApiError::forbidden(
                format!(
                    "{plural} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated"
                ),
                Some(
                    json!({"name": name, "kind": plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]}),
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The stored object.
    pub fn get(&self, res: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.get_stored(res, namespace, name).map(|o| o.value())
    }

    /// The stored object, encoded (shared, not copied).
    pub fn get_stored(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<StoredObject>, ApiError> {
        let s = self.lock();
        s.objects
            .get(&res.storage_key())
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.plural, &res.group, name))
    }

    /// All objects of a resource (in a namespace, or all), sorted, with the list resourceVersion.
    pub fn list(&self, res: &Resource, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let (items, rv) = self.list_stored(res, namespace);
        (items.iter().map(|o| o.value()).collect(), rv)
    }

    /// [`Self::list`], encoded; the objects are decoded outside the lock.
    pub fn list_stored(
        &self,
        res: &Resource,
        namespace: Option<&str>,
    ) -> (Vec<Arc<StoredObject>>, u64) {
        let s = self.lock();
        let items = s
            .objects
            .get(&res.storage_key())
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, s.rv)
    }

    /// Every object of every resource in a namespace (the namespace controller empties it).
    pub fn namespace_contents(&self, namespace: &str) -> Vec<(Resource, String)> {
        let s = self.lock();
        let mut out = Vec::new();
        for ((group, plural), objs) in &s.objects {
            let Some(res) = s.registry.get(group, plural) else {
                continue;
            };
            for (ns, name) in objs.keys() {
                if ns == namespace {
                    out.push((res.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Every object whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<(Resource, Value)> {
        let s = self.lock();
        let mut out = Vec::new();
        for ((group, plural), objs) in &s.objects {
            let Some(res) = s.registry.get(group, plural) else {
                continue;
            };
            for obj in objs.values() {
                if obj.owned_by(uid) {
                    out.push((res.clone(), obj.value()));
                }
            }
        }
        out
    }

    /// Whether any stored object has this uid.
    pub fn uid_exists(&self, uid: &str) -> bool {
        let s = self.lock();
        s.objects
            .values()
            .any(|m| m.values().any(|o| *o.uid == *uid))
    }

    /// Replaces an object through `change`, which gets the stored object and returns the new one.
    /// Server-owned metadata is kept, status rules applied, `generation` maintained; a result
    /// equal to the stored object changes nothing. Removing the last finalizer of a deleting
    /// object deletes it.
    pub fn update(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
        subresource: Option<&str>,
        dry_run: bool,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let mut s = self.lock();
        let key = res.storage_key();
        let id = (namespace.to_owned(), name.to_owned());
        let stored_old = s
            .objects
            .get(&key)
            .and_then(|m| m.get(&id))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.plural, &res.group, name))?;
        let old = stored_old.value();
        let mut new = change(&old)?;
        if !new.is_object() || !(new["metadata"].is_object() || new["metadata"].is_null()) {
            return Err(ApiError::bad_request(
                "the object and its metadata must be JSON objects",
            ));
        }
        let status_sub = res.version(res.storage_version()).is_some_and(|v| v.status);
        // Status rules: the main resource ignores status, /status ignores everything else.
        match subresource {
            Some("status") => {
                let status = new.get("status").cloned();
                // The write's ownership records stay (they only cover status).
                let managed = new["metadata"].get("managedFields").cloned();
                new = old.clone();
                match status {
                    Some(st) => new["status"] = st,
                    None => {
                        new.as_object_mut().map(|o| o.remove("status"));
                    }
                }
                if let Some(m) = new["metadata"].as_object_mut() {
                    match managed {
                        Some(mf) => m.insert("managedFields".into(), mf),
                        None => m.remove("managedFields"),
                    };
                }
            }
            _ if status_sub => match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    new.as_object_mut().map(|o| o.remove("status"));
                }
            },
            _ => {}
        }
        // Server-owned metadata.
        let keep = [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
            "generation",
        ];
        {
            let m = new
                .as_object_mut()
                .and_then(|o| {
                    o.entry("metadata")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                })
                .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
            for k in keep {
                match old["metadata"].get(k) {
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
            m.insert(
                "resourceVersion".into(),
                old["metadata"]["resourceVersion"].clone(),
            );
        }
        let deleting = old["metadata"]["deletionTimestamp"].is_string();
        if deleting {
            let before = finalizers(&old);
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                let list = added
                    .iter()
                    .map(|f| format!("\"{f}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let cause = (
                    "metadata.finalizers".to_owned(),
                    "FieldValueForbidden",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                    ),
                );
                // kube-apiserver reports this cause twice (metadata is validated twice on update).
                return Err(ApiError::invalid(
                    &res.kind,
                    &res.group,
                    name,
                    &[cause.clone(), cause],
                ));
            }
        }
        if old["metadata"]["generation"].is_i64()
            && generation_relevant(&old, status_sub) != generation_relevant(&new, status_sub)
        {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        if new == old {
            return Ok(old);
        }
        if dry_run {
            return Ok(new);
        }
        s.rv += 1;
        let rv = s.rv;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let stored = Arc::new(StoredObject::new(&new));
        if deleting && finalizers(&new).is_empty() {
            s.objects.get_mut(&key).map(|m| m.remove(&id));
            self.emit(
                &mut s,
                WatchEvent {
                    rv,
                    group: key.0,
                    plural: key.1,
                    namespace: namespace.to_owned(),
                    type_: EventType::Deleted,
                    object: stored,
                    old: Some(stored_old),
                },
            );
            drop(s);
            self.after_removal(res, &new);
            return Ok(new);
        }
        s.objects
            .entry(key.clone())
            .or_default()
            .insert(id, stored.clone());
        self.emit(
            &mut s,
            WatchEvent {
                rv,
                group: key.0,
                plural: key.1,
                namespace: namespace.to_owned(),
                type_: EventType::Modified,
                object: stored,
                old: Some(stored_old),
            },
        );
        Ok(new)
    }

    fn after_removal(&self, res: &Resource, obj: &Value) {
        if let Some(uid) = meta_str(obj, "uid") {
            self.schedule(Housekeeping::OwnerGone(uid.to_owned()));
        }
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            let mut s = self.lock();
            let group = obj["spec"]["group"].as_str().unwrap_or_default().to_owned();
            let plural = obj["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            s.registry.remove(&group, &plural);
            s.objects.remove(&(group, plural));
        }
    }

    /// Removes an object under the lock and emits DELETED with a new resourceVersion; returns its
    /// last state. The lock is released before the in-server controllers are told.
    fn remove_locked(
        &self,
        mut s: MutexGuard<'_, State>,
        res: &Resource,
        namespace: &str,
        stored_old: Arc<StoredObject>,
    ) -> Value {
        let old = stored_old.value();
        let key = res.storage_key();
        let id = (
            namespace.to_owned(),
            meta_str(&old, "name").unwrap_or_default().to_owned(),
        );
        s.rv += 1;
        let rv = s.rv;
        let mut gone = old.clone();
        gone["metadata"]["resourceVersion"] = json!(rv.to_string());
        s.objects.get_mut(&key).map(|m| m.remove(&id));
        self.emit(
            &mut s,
            WatchEvent {
                rv,
                group: key.0,
                plural: key.1,
                namespace: namespace.to_owned(),
                type_: EventType::Deleted,
                object: Arc::new(StoredObject::new(&gone)),
                old: Some(stored_old),
            },
        );
        drop(s);
        self.after_removal(res, &gone);
        gone
    }

    /// Deletes an object: marks it (finalizers, foreground/orphan propagation) or removes it.
    pub fn delete(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deletion, ApiError> {
        let mut s = self.lock();
        let key = res.storage_key();
        let id = (namespace.to_owned(), name.to_owned());
        let stored_old = s
            .objects
            .get(&key)
            .and_then(|m| m.get(&id))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&res.plural, &res.group, name))?;
        let old = stored_old.value();
        if let Some(uid) = &opts.uid
            && meta_str(&old, "uid") != Some(uid.as_str())
        {
            return Err(ApiError::conflict_message(
                &res.plural,
                &res.group,
                name,
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && meta_str(&old, "resourceVersion") != Some(rv.as_str())
        {
            return Err(ApiError::conflict_message(
                &res.plural,
                &res.group,
                name,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if res.group.is_empty()
            && res.plural == "namespaces"
            && ["default", "kube-system", "kube-public"].contains(&name)
        {
            return Err(ApiError::forbidden(
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
                Some(json!({"name": name, "kind": "namespaces"})),
            ));
        }
        let mut fins = finalizers(&old);
        let propagation = opts.propagation.as_deref().unwrap_or("Background");
        let gc_finalizer = match propagation {
            "Foreground" => Some("foregroundDeletion"),
            "Orphan" => Some("orphan"),
            _ => None,
        };
        if let Some(f) = gc_finalizer
            && !fins.iter().any(|x| x == f)
            && old["metadata"]["deletionTimestamp"].is_null()
        {
            fins.push(f.to_owned());
        }
        let is_namespace = res.group.is_empty() && res.plural == "namespaces";
        let is_crd =
            res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions";
        let pending = !fins.is_empty() || is_namespace || is_crd;
        if opts.dry_run {
            return Ok(if pending {
                Deletion::Pending(old)
            } else {
                Deletion::Removed(old)
            });
        }
        if !pending {
            return Ok(Deletion::Removed(
                self.remove_locked(s, res, namespace, stored_old),
            ));
        }
        if old["metadata"]["deletionTimestamp"].is_string() && finalizers(&old) == fins {
            return Ok(Deletion::Pending(old));
        }
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = json!(now());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if fins.is_empty() {
            new["metadata"]
                .as_object_mut()
                .map(|m| m.remove("finalizers"));
        } else {
            new["metadata"]["finalizers"] = json!(fins);
        }
        if old["metadata"]["deletionTimestamp"].is_null()
            && let Some(g) = old["metadata"]["generation"].as_i64()
            && g > 0
        {
            new["metadata"]["generation"] = json!(g + 1);
        }
        if is_namespace {
            new["status"]["phase"] = json!("Terminating");
        }
        s.rv += 1;
        let rv = s.rv;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let stored = Arc::new(StoredObject::new(&new));
        s.objects
            .entry(key.clone())
            .or_default()
            .insert(id, stored.clone());
        self.emit(
            &mut s,
            WatchEvent {
                rv,
                group: key.0,
                plural: key.1,
                namespace: namespace.to_owned(),
                type_: EventType::Modified,
                object: stored,
                old: Some(stored_old),
            },
        );
        drop(s);
        let target = ObjectKey {
            group: res.group.clone(),
            plural: res.plural.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        match gc_finalizer {
            Some("foregroundDeletion") => self.schedule(Housekeeping::Foreground(target)),
            Some(_) => self.schedule(Housekeeping::Orphan(target)),
            None => {}
        }
        if is_namespace {
            self.schedule(Housekeeping::Namespace(name.to_owned()));
        }
        if is_crd {
            self.schedule(Housekeeping::Crd(name.to_owned()));
        }
        Ok(Deletion::Pending(new))
    }

    /// Removes an object regardless of finalizers (namespace/CRD finalization by the server).
    pub fn finalize(&self, res: &Resource, namespace: &str, name: &str) {
        let s = self.lock();
        let key = res.storage_key();
        let id = (namespace.to_owned(), name.to_owned());
        let Some(old) = s.objects.get(&key).and_then(|m| m.get(&id)).cloned() else {
            return;
        };
        self.remove_locked(s, res, namespace, old);
    }

    /// Events after `rv` that are still in the history, or `Err(oldest)` when `rv` is too old.
    pub fn history_after(&self, rv: u64) -> Result<Vec<Arc<WatchEvent>>, u64> {
        let s = self.lock();
        if rv < s.compacted_rv {
            return Err(s.compacted_rv);
        }
        Ok(s.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn event(rv: u64) -> Arc<WatchEvent> {
        Arc::new(WatchEvent {
            rv,
            group: String::new(),
            plural: "configmaps".into(),
            namespace: "default".into(),
            type_: EventType::Added,
            object: Arc::new(StoredObject::new(&json!({"metadata": {"name": "a"}}))),
            old: None,
        })
    }

    fn next_rv(sub: &mut Subscription, cx: &mut Context<'_>) -> Poll<Result<u64, RecvError>> {
        sub.poll_recv(cx).map(|r| r.map(|d| d.event().rv))
    }

    #[test]
    fn subscriptions_get_what_follows_them_in_order_and_are_woken() {
        let (store, _rx) = Store::new(100);
        let count = Arc::new(Count::default());
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        // Nobody listens: nothing is kept.
        store.fan_out.publish(event(1));
        let mut a = store.subscribe();
        assert!(next_rv(&mut a, &mut cx).is_pending());
        store.fan_out.publish(event(2));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let mut b = store.subscribe();
        store.fan_out.publish(event(3));
        assert_eq!(next_rv(&mut a, &mut cx), Poll::Ready(Ok(2)));
        assert_eq!(next_rv(&mut a, &mut cx), Poll::Ready(Ok(3)));
        assert!(next_rv(&mut a, &mut cx).is_pending());
        assert_eq!(next_rv(&mut b, &mut cx), Poll::Ready(Ok(3)));
        drop(b);
        assert_eq!(store.fan_out.lock().watchers.len(), 1);
    }

    #[test]
    fn a_subscription_too_far_behind_lags_and_one_of_a_dropped_store_closes() {
        let (store, _rx) = Store::new(100);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut behind = store.subscribe();
        let mut reading = store.subscribe();
        for rv in 0..=FAN_OUT_CAP as u64 {
            store.fan_out.publish(event(rv));
            assert_eq!(next_rv(&mut reading, &mut cx), Poll::Ready(Ok(rv)));
        }
        assert_eq!(
            next_rv(&mut behind, &mut cx),
            Poll::Ready(Err(RecvError::Lagged))
        );
        store.fan_out.publish(event(1 << 20));
        drop(store);
        // What was sent before the store went is still read.
        assert_eq!(next_rv(&mut reading, &mut cx), Poll::Ready(Ok(1 << 20)));
        assert_eq!(
            next_rv(&mut reading, &mut cx),
            Poll::Ready(Err(RecvError::Closed))
        );
    }

    fn ns(store: &Store, name: &str) {
        let reg = Registry::new();
        let res = reg.get("", "namespaces").cloned().unwrap();
        store
            .create(&res, "", json!({"metadata": {"name": name}}), false)
            .unwrap();
    }

    #[test]
    fn writes_bump_one_global_counter_and_noops_do_not() {
        let (store, _rx) = Store::new(100);
        ns(&store, "default");
        let res = Registry::new().get("", "configmaps").cloned().unwrap();
        let a = store
            .create(
                &res,
                "default",
                json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
                false,
            )
            .unwrap();
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let same = store
            .update(&res, "default", "a", None, false, |o| Ok(o.clone()))
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let changed = store
            .update(&res, "default", "a", None, false, |o| {
                let mut o = o.clone();
                o["data"]["k"] = json!("w");
                Ok(o)
            })
            .unwrap();
        assert_eq!(
            changed["metadata"]["resourceVersion"],
            json!((rv_a + 1).to_string())
        );
        assert_eq!(store.history_after(rv_a).unwrap().len(), 1);
    }

    #[test]
    fn finalizers_hold_deletion_and_cannot_grow_while_deleting() {
        let (store, _rx) = Store::new(100);
        ns(&store, "default");
        let res = Registry::new().get("", "configmaps").cloned().unwrap();
        store
            .create(
                &res,
                "default",
                json!({"metadata": {"name": "a", "finalizers": ["x/y"]}}),
                false,
            )
            .unwrap();
        assert!(matches!(
            store
                .delete(&res, "default", "a", &DeleteOptions::default())
                .unwrap(),
            Deletion::Pending(_)
        ));
        let err = store
            .update(&res, "default", "a", None, false, |o| {
                let mut o = o.clone();
                o["metadata"]["finalizers"] = json!(["x/y", "x/z"]);
                Ok(o)
            })
            .unwrap_err();
        assert_eq!(err.code, 422);
        store
            .update(&res, "default", "a", None, false, |o| {
                let mut o = o.clone();
                o["metadata"]["finalizers"] = json!([]);
                Ok(o)
            })
            .unwrap();
        assert_eq!(store.get(&res, "default", "a").unwrap_err().code, 404);
    }

    #[test]
    fn missing_namespace_is_not_found() {
        let (store, _rx) = Store::new(100);
        let res = Registry::new().get("", "configmaps").cloned().unwrap();
        let err = store
            .create(&res, "nope", json!({"metadata": {"name": "a"}}), false)
            .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );
    }
}
