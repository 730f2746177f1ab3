//! SimCloud: a simulated IaaS cloud with the habits of real ones.
//!
//! It has zones, networks, load balancers and instances, and misbehaves the way real cloud APIs
//! do, each habit configurable in [`CloudConfig`]:
//!
//! - **latency** on every call;
//! - **errors** at a given rate: `Unavailable` and `Throttled` before the call takes effect, and
//!   `Timeout` *after* a create or delete took effect (the response was lost), the case that
//!   makes naive providers leak;
//! - **quotas** on live instances;
//! - **eventual consistency**: a new resource is invisible to `describe_*` and `find_*` for a
//!   while, as EC2's are;
//! - **slow state changes**: instances boot, load balancers provision, terminations take time,
//!   and a network cannot be deleted while something still uses it.
//!
//! Creates are idempotent by *client token*: the same token returns the same resource, so a
//! caller that retries after a lost response gets what it created instead of a second one.
//! [`SimCloud::inventory`] sees through all of it, for leak checks.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), capi_provider_simcloud::cloud::CloudError> {
//! use capi_provider_simcloud::cloud::{CloudConfig, InstanceRequest, InstanceState, SimCloud};
//! use std::time::Duration;
//!
//! let cloud = SimCloud::new(CloudConfig { boot_time: Duration::ZERO, consistency_delay: Duration::ZERO, ..CloudConfig::instant() });
//! let net = cloud.create_network("token-net", "demo", "10.0.0.0/16", Default::default()).await?;
//! let request = InstanceRequest { name: "m1".into(), zone: "zone-a".into(), network_id: net.id.clone(),
//!     size: "small".into(), user_data: b"#cloud-config".to_vec(), tags: Default::default() };
//! let first = cloud.run_instance("token-m1", request.clone()).await?;
//! let again = cloud.run_instance("token-m1", request).await?; // a retry: same instance
//! assert_eq!(first.id, again.id);
//! assert_eq!(cloud.describe_instance(&first.id).await?.map(|i| i.state), Some(InstanceState::Running));
//! assert_eq!(cloud.inventory().instances, 1);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

/// How the cloud behaves.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Added to every call.
    pub latency: Duration,
    /// Probability (0 to 1) that a call fails; see the module docs for how.
    pub error_rate: f64,
    /// Live (not terminated) instances allowed at once.
    pub instance_quota: usize,
    /// How long a new resource stays invisible to `describe_*` and `find_*`.
    pub consistency_delay: Duration,
    /// Pending → Running.
    pub boot_time: Duration,
    /// Provisioning → Active for load balancers.
    pub lb_provision_time: Duration,
    /// ShuttingDown → Terminated, and deleting a load balancer or network.
    pub teardown_time: Duration,
    /// The zones, all available.
    pub zones: Vec<String>,
    /// Seed of the error dice, for reproducible runs.
    pub seed: u64,
}

impl Default for CloudConfig {
    /// A cloud that feels real but is quick: 10 ms calls, 1 s boots, 300 ms of inconsistency,
    /// no errors, a quota of 100 instances, three zones.
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            error_rate: 0.0,
            instance_quota: 100,
            consistency_delay: Duration::from_millis(300),
            boot_time: Duration::from_secs(1),
            lb_provision_time: Duration::from_millis(800),
            teardown_time: Duration::from_millis(400),
            zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
            seed: 0,
        }
    }
}

impl CloudConfig {
    /// No latency and no waiting anywhere (errors still as configured): for unit tests.
    pub fn instant() -> Self {
        Self {
            latency: Duration::ZERO,
            consistency_delay: Duration::ZERO,
            boot_time: Duration::ZERO,
            lb_provision_time: Duration::ZERO,
            teardown_time: Duration::ZERO,
            ..Self::default()
        }
    }
}

/// What a cloud call can answer instead of a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The service is briefly unavailable; nothing happened.
    #[error("service unavailable, retry")]
    Unavailable,
    /// Too many requests; nothing happened.
    #[error("request rate exceeded, retry later")]
    Throttled,
    /// No answer in time; the call may or may not have taken effect.
    #[error("request timed out; the call may have taken effect")]
    Timeout,
    /// The live-instance quota is used up.
    #[error("instance quota of {quota} exhausted")]
    QuotaExceeded {
        /// The quota.
        quota: usize,
    },
    /// No such zone.
    #[error("unknown zone {0:?}")]
    InvalidZone(String),
    /// No such instance size.
    #[error("unknown instance size {0:?} (small, medium, large)")]
    InvalidSize(String),
    /// A referenced resource does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind.
        kind: &'static str,
        /// Its ID.
        id: String,
    },
    /// The resource is still used by others.
    #[error("{kind} {id} is still in use by {users}")]
    DependencyViolation {
        /// Resource kind.
        kind: &'static str,
        /// Its ID.
        id: String,
        /// Who uses it.
        users: String,
    },
}

impl CloudError {
    /// Whether retrying the same call can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable
                | Self::Throttled
                | Self::Timeout
                | Self::QuotaExceeded { .. }
                | Self::DependencyViolation { .. }
        )
    }
}

/// Tags: free-form key/value pairs on every resource.
pub type Tags = BTreeMap<String, String>;

/// A network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `net-…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its address range.
    pub cidr: String,
    /// Being deleted.
    pub deleting: bool,
    /// Its tags.
    pub tags: Tags,
}

/// A load balancer's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerState {
    /// Not yet serving.
    Provisioning,
    /// Serving at its DNS name.
    Active,
    /// Going away.
    Deleting,
}

/// A load balancer in front of the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    /// `lb-…`.
    pub id: String,
    /// The network it lives in.
    pub network_id: String,
    /// Its DNS name: the cluster's control-plane endpoint.
    pub dns_name: String,
    /// Its port.
    pub port: i32,
    /// Its state.
    pub state: LoadBalancerState,
    /// Its tags.
    pub tags: Tags,
}

/// An instance's life, as EC2 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Booting.
    Pending,
    /// Up.
    Running,
    /// Terminating.
    ShuttingDown,
    /// Gone (still listed, as EC2 lists terminated instances for a while).
    Terminated,
}

/// What to launch.
#[derive(Clone, PartialEq, Eq)]
pub struct InstanceRequest {
    /// A name (shows in the inventory).
    pub name: String,
    /// The zone.
    pub zone: String,
    /// The network.
    pub network_id: String,
    /// `small`, `medium` or `large`.
    pub size: String,
    /// Data handed to the instance at boot (the bootstrap data: a secret).
    pub user_data: Vec<u8>,
    /// Tags.
    pub tags: Tags,
}

impl std::fmt::Debug for InstanceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceRequest")
            .field("name", &self.name)
            .field("zone", &self.zone)
            .field("network_id", &self.network_id)
            .field("size", &self.size)
            .field(
                "user_data",
                &format_args!("<{} bytes>", self.user_data.len()),
            )
            .field("tags", &self.tags)
            .finish()
    }
}

/// An instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its zone.
    pub zone: String,
    /// Its network.
    pub network_id: String,
    /// Its private address.
    pub private_ip: String,
    /// Its state.
    pub state: InstanceState,
    /// Its tags.
    pub tags: Tags,
    /// Length of the user data it booted with (the data itself is not kept in listings).
    pub user_data_len: usize,
}

/// What exists, seen from behind the API (no latency, no errors, no inconsistency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Instances not yet terminated.
    pub instances: usize,
    /// Networks.
    pub networks: usize,
    /// Load balancers.
    pub load_balancers: usize,
}

impl Inventory {
    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Calls made and failed, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Every call.
    pub calls: u64,
    /// Calls answered with an injected error.
    pub injected_errors: u64,
}

#[derive(Debug)]
struct Stored<T> {
    value: T,
    created: Instant,
    /// When the current transition (boot, provisioning, teardown) completes.
    settles: Instant,
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    next_id: u64,
    tokens: HashMap<String, String>,
    networks: BTreeMap<String, Stored<Network>>,
    load_balancers: BTreeMap<String, Stored<LoadBalancer>>,
    instances: BTreeMap<String, Stored<Instance>>,
    stats: CallStats,
}

/// The simulated cloud; clones share it.
#[derive(Debug, Clone)]
pub struct SimCloud {
    config: Arc<CloudConfig>,
    state: Arc<Mutex<State>>,
}

/// What the error dice decided for one call.
#[derive(Debug, PartialEq)]
enum Dice {
    Pass,
    /// Fail before anything happens.
    Fail(CloudError),
    /// Apply the call, then lose the answer.
    LoseAnswer,
}

const SIZES: [&str; 3] = ["small", "medium", "large"];

impl SimCloud {
    /// An empty cloud.
    pub fn new(config: CloudConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self {
            config: Arc::new(config),
            state: Arc::new(Mutex::new(State {
                rng,
                next_id: 1,
                tokens: HashMap::new(),
                networks: BTreeMap::new(),
                load_balancers: BTreeMap::new(),
                instances: BTreeMap::new(),
                stats: CallStats::default(),
            })),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps behind (every update is one
        // insert or field write): carry on with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Latency, then the error dice. `mutating` calls can lose their answer after applying.
    async fn call(&self, mutating: bool) -> Dice {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let mut s = self.lock();
        s.stats.calls += 1;
        let rate = self.config.error_rate.clamp(0.0, 1.0);
        if rate == 0.0 || !s.rng.random_bool(rate) {
            return Dice::Pass;
        }
        s.stats.injected_errors += 1;
        match s.rng.random_range(0..3u8) {
            0 if mutating => Dice::LoseAnswer,
            0 | 1 => Dice::Fail(CloudError::Unavailable),
            _ => Dice::Fail(CloudError::Throttled),
        }
    }

    /// The start of every call: latency and the dice, then the state with every due
    /// transition applied.
    async fn begin(
        &self,
        mutating: bool,
    ) -> Result<(Dice, MutexGuard<'_, State>, Instant), CloudError> {
        let dice = self.call(mutating).await;
        Self::before(&dice)?;
        let mut s = self.lock();
        let now = Instant::now();
        s.settle(now);
        Ok((dice, s, now))
    }

    fn before(dice: &Dice) -> Result<(), CloudError> {
        match dice {
            Dice::Fail(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn after<T>(dice: &Dice, value: T) -> Result<T, CloudError> {
        if *dice == Dice::LoseAnswer {
            Err(CloudError::Timeout)
        } else {
            Ok(value)
        }
    }

    fn visible<T>(&self, stored: &Stored<T>, now: Instant) -> bool {
        now >= stored.created + self.config.consistency_delay
    }

    /// The zones.
    pub async fn zones(&self) -> Result<Vec<String>, CloudError> {
        Self::before(&self.call(false).await)?;
        Ok(self.config.zones.clone())
    }

    /// Creates a network (idempotent by `token`).
    pub async fn create_network(
        &self,
        token: &str,
        name: &str,
        cidr: &str,
        tags: Tags,
    ) -> Result<Network, CloudError> {
        let (dice, mut s, now) = self.begin(true).await?;
        if let Some(n) = s.tokens.get(token).and_then(|id| s.networks.get(id)) {
            return Self::after(&dice, n.value.clone());
        }
        let id = s.new_id("net");
        let network = Network {
            id: id.clone(),
            name: name.to_owned(),
            cidr: cidr.to_owned(),
            deleting: false,
            tags,
        };
        s.tokens.insert(token.to_owned(), id.clone());
        s.networks.insert(
            id,
            Stored {
                value: network.clone(),
                created: now,
                settles: now,
            },
        );
        Self::after(&dice, network)
    }

    /// A network, once visible; `None` while it is not (yet) or no longer.
    pub async fn describe_network(&self, id: &str) -> Result<Option<Network>, CloudError> {
        let (_, s, now) = self.begin(false).await?;
        Ok(s.networks
            .get(id)
            .filter(|n| self.visible(n, now))
            .map(|n| n.value.clone()))
    }

    /// Starts deleting a network; fails while load balancers or instances use it.
    pub async fn delete_network(&self, id: &str) -> Result<(), CloudError> {
        let (dice, mut s, now) = self.begin(true).await?;
        if !s.networks.contains_key(id) {
            return Err(CloudError::NotFound {
                kind: "network",
                id: id.to_owned(),
            });
        }
        let users: Vec<String> = s
            .load_balancers
            .values()
            .filter(|l| l.value.network_id == id)
            .map(|l| l.value.id.clone())
            .chain(
                s.instances
                    .values()
                    .filter(|i| {
                        i.value.network_id == id && i.value.state != InstanceState::Terminated
                    })
                    .map(|i| i.value.id.clone()),
            )
            .collect();
        if !users.is_empty() {
            return Err(CloudError::DependencyViolation {
                kind: "network",
                id: id.to_owned(),
                users: users.join(", "),
            });
        }
        let teardown = self.config.teardown_time;
        if let Some(n) = s.networks.get_mut(id)
            && !n.value.deleting
        {
            n.value.deleting = true;
            n.settles = now + teardown;
        }
        Self::after(&dice, ())
    }

    /// Creates a load balancer in a network (idempotent by `token`).
    pub async fn create_load_balancer(
        &self,
        token: &str,
        name: &str,
        network_id: &str,
        port: i32,
        tags: Tags,
    ) -> Result<LoadBalancer, CloudError> {
        let (dice, mut s, now) = self.begin(true).await?;
        if let Some(l) = s.tokens.get(token).and_then(|id| s.load_balancers.get(id)) {
            return Self::after(&dice, l.value.clone());
        }
        if !s.networks.contains_key(network_id) {
            return Err(CloudError::NotFound {
                kind: "network",
                id: network_id.to_owned(),
            });
        }
        let id = s.new_id("lb");
        let lb = LoadBalancer {
            dns_name: format!("{name}-{id}.lb.simcloud.internal"),
            id: id.clone(),
            network_id: network_id.to_owned(),
            port,
            state: LoadBalancerState::Provisioning,
            tags,
        };
        s.tokens.insert(token.to_owned(), id.clone());
        s.load_balancers.insert(
            id,
            Stored {
                value: lb.clone(),
                created: now,
                settles: now + self.config.lb_provision_time,
            },
        );
        Self::after(&dice, lb)
    }

    /// A load balancer, once visible.
    pub async fn describe_load_balancer(
        &self,
        id: &str,
    ) -> Result<Option<LoadBalancer>, CloudError> {
        let (_, s, now) = self.begin(false).await?;
        Ok(s.load_balancers
            .get(id)
            .filter(|l| self.visible(l, now))
            .map(|l| l.value.clone()))
    }

    /// Starts deleting a load balancer.
    pub async fn delete_load_balancer(&self, id: &str) -> Result<(), CloudError> {
        let (dice, mut s, now) = self.begin(true).await?;
        let teardown = self.config.teardown_time;
        match s.load_balancers.get_mut(id) {
            None => Err(CloudError::NotFound {
                kind: "load balancer",
                id: id.to_owned(),
            }),
            Some(l) => {
                if l.value.state != LoadBalancerState::Deleting {
                    l.value.state = LoadBalancerState::Deleting;
                    l.settles = now + teardown;
                }
                Self::after(&dice, ())
            }
        }
    }

    /// Launches an instance (idempotent by `token`).
    pub async fn run_instance(
        &self,
        token: &str,
        request: InstanceRequest,
    ) -> Result<Instance, CloudError> {
        let (dice, mut s, now) = self.begin(true).await?;
        if let Some(i) = s.tokens.get(token).and_then(|id| s.instances.get(id)) {
            return Self::after(&dice, i.value.clone());
        }
        if !self.config.zones.contains(&request.zone) {
            return Err(CloudError::InvalidZone(request.zone));
        }
        if !SIZES.contains(&request.size.as_str()) {
            return Err(CloudError::InvalidSize(request.size));
        }
        if !s.networks.contains_key(&request.network_id) {
            return Err(CloudError::NotFound {
                kind: "network",
                id: request.network_id,
            });
        }
        let live = s
            .instances
            .values()
            .filter(|i| i.value.state != InstanceState::Terminated)
            .count();
        if live >= self.config.instance_quota {
            return Err(CloudError::QuotaExceeded {
                quota: self.config.instance_quota,
            });
        }
        let id = s.new_id("i");
        let n = s.next_id;
        let instance = Instance {
            id: id.clone(),
            name: request.name,
            zone: request.zone,
            network_id: request.network_id,
            private_ip: format!("10.0.{}.{}", (n / 250) % 250, n % 250 + 2),
            state: InstanceState::Pending,
            tags: request.tags,
            user_data_len: request.user_data.len(),
        };
        s.tokens.insert(token.to_owned(), id.clone());
        s.instances.insert(
            id,
            Stored {
                value: instance.clone(),
                created: now,
                settles: now + self.config.boot_time,
            },
        );
        Self::after(&dice, instance)
    }

    /// An instance, once visible (terminated ones stay listed).
    pub async fn describe_instance(&self, id: &str) -> Result<Option<Instance>, CloudError> {
        let (_, s, now) = self.begin(false).await?;
        Ok(s.instances
            .get(id)
            .filter(|i| self.visible(i, now))
            .map(|i| i.value.clone()))
    }

    /// Visible instances carrying tag `key=value` (terminated ones included).
    pub async fn find_instances(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<Instance>, CloudError> {
        let (_, s, now) = self.begin(false).await?;
        Ok(self.tagged(&s.instances, now, key, value, |i| &i.tags))
    }

    /// Visible networks carrying tag `key=value`.
    pub async fn find_networks(&self, key: &str, value: &str) -> Result<Vec<Network>, CloudError> {
        let (_, s, now) = self.begin(false).await?;
        Ok(self.tagged(&s.networks, now, key, value, |n| &n.tags))
    }

    /// Visible load balancers carrying tag `key=value`.
    pub async fn find_load_balancers(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<LoadBalancer>, CloudError> {
        let (_, s, now) = self.begin(false).await?;
        Ok(self.tagged(&s.load_balancers, now, key, value, |l| &l.tags))
    }

    fn tagged<T: Clone>(
        &self,
        map: &BTreeMap<String, Stored<T>>,
        now: Instant,
        key: &str,
        value: &str,
        tags: impl Fn(&T) -> &Tags,
    ) -> Vec<T> {
        map.values()
            .filter(|r| self.visible(r, now))
            .filter(|r| tags(&r.value).get(key).map(String::as_str) == Some(value))
            .map(|r| r.value.clone())
            .collect()
    }

    /// Starts terminating an instance (a terminated one stays terminated).
    pub async fn terminate_instance(&self, id: &str) -> Result<(), CloudError> {
        let (dice, mut s, now) = self.begin(true).await?;
        let teardown = self.config.teardown_time;
        match s.instances.get_mut(id) {
            None => Err(CloudError::NotFound {
                kind: "instance",
                id: id.to_owned(),
            }),
            Some(i) => {
                if matches!(
                    i.value.state,
                    InstanceState::Pending | InstanceState::Running
                ) {
                    i.value.state = InstanceState::ShuttingDown;
                    i.settles = now + teardown;
                }
                Self::after(&dice, ())
            }
        }
    }

    /// What exists right now, without latency, errors or inconsistency.
    pub fn inventory(&self) -> Inventory {
        let mut s = self.lock();
        s.settle(Instant::now());
        Inventory {
            instances: s
                .instances
                .values()
                .filter(|i| i.value.state != InstanceState::Terminated)
                .count(),
            networks: s.networks.len(),
            load_balancers: s.load_balancers.len(),
        }
    }

    /// Every instance not yet terminated, by name (for reports and leak messages).
    pub fn live_instances(&self) -> Vec<Instance> {
        let mut s = self.lock();
        s.settle(Instant::now());
        s.instances
            .values()
            .filter(|i| i.value.state != InstanceState::Terminated)
            .map(|i| i.value.clone())
            .collect()
    }

    /// Calls made so far.
    pub fn stats(&self) -> CallStats {
        self.lock().stats
    }
}

impl State {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:08x}", self.next_id)
    }

    /// Moves every resource whose transition is due to its next state; deleted networks and
    /// load balancers disappear.
    fn settle(&mut self, now: Instant) {
        for i in self.instances.values_mut() {
            if now >= i.settles {
                i.value.state = match i.value.state {
                    InstanceState::Pending => InstanceState::Running,
                    InstanceState::ShuttingDown => InstanceState::Terminated,
                    s => s,
                };
            }
        }
        self.load_balancers
            .retain(|_, l| now < l.settles || l.value.state != LoadBalancerState::Deleting);
        for l in self.load_balancers.values_mut() {
            if now >= l.settles && l.value.state == LoadBalancerState::Provisioning {
                l.value.state = LoadBalancerState::Active;
            }
        }
        self.networks
            .retain(|_, n| now < n.settles || !n.value.deleting);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(network: &str) -> InstanceRequest {
        InstanceRequest {
            name: "m".into(),
            zone: "zone-a".into(),
            network_id: network.into(),
            size: "small".into(),
            user_data: vec![1, 2, 3],
            tags: Tags::from([("machine".into(), "m".into())]),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn new_instances_are_invisible_then_boot_then_terminate() {
        let cloud = SimCloud::new(CloudConfig {
            latency: Duration::ZERO,
            ..CloudConfig::default()
        });
        let net = cloud
            .create_network("n", "n", "10.0.0.0/16", Tags::new())
            .await
            .unwrap();
        let i = cloud.run_instance("t", request(&net.id)).await.unwrap();
        assert_eq!(cloud.describe_instance(&i.id).await.unwrap(), None);
        assert!(
            cloud
                .find_instances("machine", "m")
                .await
                .unwrap()
                .is_empty()
        );
        tokio::time::advance(Duration::from_millis(301)).await;
        let seen = cloud.describe_instance(&i.id).await.unwrap().unwrap();
        assert_eq!(seen.state, InstanceState::Pending);
        tokio::time::advance(Duration::from_secs(1)).await;
        let seen = cloud.describe_instance(&i.id).await.unwrap().unwrap();
        assert_eq!(seen.state, InstanceState::Running);
        assert!(matches!(
            cloud.delete_network(&net.id).await,
            Err(CloudError::DependencyViolation { .. })
        ));
        cloud.terminate_instance(&i.id).await.unwrap();
        assert_eq!(cloud.inventory().instances, 1, "shutting down still counts");
        tokio::time::advance(Duration::from_millis(401)).await;
        assert_eq!(cloud.inventory().instances, 0);
        cloud.delete_network(&net.id).await.unwrap();
        tokio::time::advance(Duration::from_millis(401)).await;
        assert!(cloud.inventory().is_empty());
    }

    #[tokio::test]
    async fn quota_and_validation() {
        let cloud = SimCloud::new(CloudConfig {
            instance_quota: 1,
            ..CloudConfig::instant()
        });
        let net = cloud
            .create_network("n", "n", "10.0.0.0/16", Tags::new())
            .await
            .unwrap();
        cloud.run_instance("a", request(&net.id)).await.unwrap();
        assert_eq!(
            cloud.run_instance("b", request(&net.id)).await,
            Err(CloudError::QuotaExceeded { quota: 1 })
        );
        let mut bad = request(&net.id);
        bad.zone = "mars".into();
        assert_eq!(
            cloud.run_instance("c", bad).await,
            Err(CloudError::InvalidZone("mars".into()))
        );
        assert!(!CloudError::InvalidZone(String::new()).is_retryable());
        assert!(CloudError::Timeout.is_retryable());
    }

    #[tokio::test]
    async fn retrying_with_the_token_never_duplicates_even_when_answers_are_lost() {
        let cloud = SimCloud::new(CloudConfig {
            error_rate: 0.5,
            seed: 7,
            ..CloudConfig::instant()
        });
        let net = loop {
            if let Ok(n) = cloud
                .create_network("n", "n", "10.0.0.0/16", Tags::new())
                .await
            {
                break n;
            }
        };
        let mut ids = std::collections::BTreeSet::new();
        let mut lost = 0;
        for _ in 0..200 {
            match cloud.run_instance("same", request(&net.id)).await {
                Ok(i) => {
                    ids.insert(i.id);
                }
                Err(CloudError::Timeout) => lost += 1,
                Err(_) => {}
            }
        }
        assert!(lost > 0, "some answers were lost");
        assert_eq!(ids.len(), 1);
        assert_eq!(cloud.inventory().instances, 1);
        assert!(cloud.stats().injected_errors > 0);
    }
}
