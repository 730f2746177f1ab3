//! Prometheus metrics under controller-runtime's names, so existing dashboards and alerts work.
//!
//! | metric | labels |
//! | --- | --- |
//! | `controller_runtime_reconcile_total` | `controller`, `result` (`success`, `error`, `requeue_after`) |
//! | `controller_runtime_reconcile_errors_total` | `controller` |
//! | `controller_runtime_reconcile_panics_total` | `controller` |
//! | `controller_runtime_reconcile_time_seconds` | `controller` |
//! | `controller_runtime_active_workers`, `controller_runtime_max_concurrent_reconciles` | `controller` |
//! | `workqueue_depth`, `workqueue_adds_total`, `workqueue_retries_total` | `name`, `controller` |
//! | `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds` | `name`, `controller` |
//!
//! kube-runtime keeps its queue private, so the queue figures come from the SDK's own
//! bookkeeping: an *add* is a watch event or a mapped trigger for a key, the key is *queued*
//! from its first add until its reconcile starts (repeated adds collapse, as in client-go's
//! workqueue), and the queue duration is that wait.
//!
//! ```
//! use capi_provider_sdk::metrics::Metrics;
//! let mut registry = prometheus_client::registry::Registry::default();
//! let metrics = Metrics::new(&mut registry);
//! let c = metrics.controller("examplemachine");
//! c.queue_add("default/m1");
//! let timer = c.reconcile_started("default/m1");
//! timer.finish(capi_provider_sdk::metrics::ReconcileResult::Success);
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("controller_runtime_reconcile_total{controller=\"examplemachine\",result=\"success\"} 1"));
//! assert!(text.contains("workqueue_adds_total{name=\"examplemachine\",controller=\"examplemachine\"} 1"));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    name: String,
    controller: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // controller-runtime's buckets: 1 ms .. ~1000 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 21))
}

/// How one reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Done; wait for the next change.
    Success,
    /// Done for now; look again after a delay.
    RequeueAfter,
    /// Failed; retried with backoff.
    Error,
    /// The reconcile panicked (counted as an error too).
    Panic,
}

/// All metric families, registered once per process (or per test).
#[derive(Debug, Clone)]
pub struct Metrics {
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_panics: Family<ControllerLabel, Counter>,
    reconcile_time: HistogramFamily<ControllerLabel>,
    active_workers: Family<ControllerLabel, Gauge>,
    max_concurrent: Family<ControllerLabel, Gauge>,
    queue_depth: Family<QueueLabels, Gauge>,
    queue_adds: Family<QueueLabels, Counter>,
    queue_retries: Family<QueueLabels, Counter>,
    queue_duration: HistogramFamily<QueueLabels>,
    work_duration: HistogramFamily<QueueLabels>,
}

impl Metrics {
    /// Creates the families and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_panics: Family::default(),
            reconcile_time: Family::new_with_constructor(duration_histogram),
            active_workers: Family::default(),
            max_concurrent: Family::default(),
            queue_depth: Family::default(),
            queue_adds: Family::default(),
            queue_retries: Family::default(),
            queue_duration: Family::new_with_constructor(duration_histogram),
            work_duration: Family::new_with_constructor(duration_histogram),
        };
        let r = registry;
        r.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            m.reconcile_total.clone(),
        );
        r.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            m.reconcile_errors.clone(),
        );
        r.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            m.reconcile_panics.clone(),
        );
        r.register_with_unit(
            "controller_runtime_reconcile_time",
            "Length of time per reconciliation per controller",
            Unit::Seconds,
            m.reconcile_time.clone(),
        );
        r.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            m.active_workers.clone(),
        );
        r.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            m.max_concurrent.clone(),
        );
        r.register(
            "workqueue_depth",
            "Current depth of workqueue",
            m.queue_depth.clone(),
        );
        r.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            m.queue_adds.clone(),
        );
        r.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            m.queue_retries.clone(),
        );
        r.register_with_unit(
            "workqueue_queue_duration",
            "How long an item stays in workqueue before being requested",
            Unit::Seconds,
            m.queue_duration.clone(),
        );
        r.register_with_unit(
            "workqueue_work_duration",
            "How long processing an item from workqueue takes",
            Unit::Seconds,
            m.work_duration.clone(),
        );
        m
    }

    /// The handle one controller records through.
    pub fn controller(&self, name: &str) -> ControllerMetrics {
        ControllerMetrics {
            metrics: self.clone(),
            name: name.to_owned(),
            queued: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// One controller's metrics and queue bookkeeping.
#[derive(Debug, Clone)]
pub struct ControllerMetrics {
    metrics: Metrics,
    name: String,
    queued: Arc<Mutex<HashMap<String, Instant>>>,
}

impl ControllerMetrics {
    fn c(&self) -> ControllerLabel {
        ControllerLabel {
            controller: self.name.clone(),
        }
    }

    fn q(&self) -> QueueLabels {
        QueueLabels {
            name: self.name.clone(),
            controller: self.name.clone(),
        }
    }

    /// Records the configured concurrency.
    pub fn set_max_concurrent(&self, n: i64) {
        self.metrics.max_concurrent.get_or_create(&self.c()).set(n);
    }

    /// A key was added to the queue (a watch event or a mapped trigger).
    pub fn queue_add(&self, key: &str) {
        self.metrics.queue_adds.get_or_create(&self.q()).inc();
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.entry(key.to_owned()).or_insert_with(Instant::now);
        self.metrics
            .queue_depth
            .get_or_create(&self.q())
            .set(i64::try_from(queued.len()).unwrap_or(i64::MAX));
    }

    /// A retry was scheduled after an error.
    pub fn queue_retry(&self) {
        self.metrics.queue_retries.get_or_create(&self.q()).inc();
    }

    /// A reconcile of `key` starts; finish the returned timer when it ends.
    pub fn reconcile_started(&self, key: &str) -> ReconcileTimer {
        let waited = {
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            let waited = queued.remove(key).map(|t| t.elapsed());
            self.metrics
                .queue_depth
                .get_or_create(&self.q())
                .set(i64::try_from(queued.len()).unwrap_or(i64::MAX));
            waited
        };
        if let Some(waited) = waited {
            self.metrics
                .queue_duration
                .get_or_create(&self.q())
                .observe(waited.as_secs_f64());
        }
        self.metrics.active_workers.get_or_create(&self.c()).inc();
        ReconcileTimer {
            owner: self.clone(),
            start: Instant::now(),
            done: false,
        }
    }
}

/// Measures one reconcile; records its outcome when finished (an error if dropped unfinished).
#[derive(Debug)]
pub struct ReconcileTimer {
    owner: ControllerMetrics,
    start: Instant,
    done: bool,
}

impl ReconcileTimer {
    /// Records how the reconcile ended.
    pub fn finish(mut self, result: ReconcileResult) {
        self.record(result);
    }

    fn record(&mut self, result: ReconcileResult) {
        if self.done {
            return;
        }
        self.done = true;
        let m = &self.owner.metrics;
        let secs = self.start.elapsed().as_secs_f64();
        m.reconcile_time
            .get_or_create(&self.owner.c())
            .observe(secs);
        m.work_duration.get_or_create(&self.owner.q()).observe(secs);
        m.active_workers.get_or_create(&self.owner.c()).dec();
        let label = match result {
            ReconcileResult::Success => "success",
            ReconcileResult::RequeueAfter => "requeue_after",
            ReconcileResult::Error | ReconcileResult::Panic => "error",
        };
        m.reconcile_total
            .get_or_create(&ResultLabels {
                controller: self.owner.name.clone(),
                result: label.into(),
            })
            .inc();
        if matches!(result, ReconcileResult::Error | ReconcileResult::Panic) {
            m.reconcile_errors.get_or_create(&self.owner.c()).inc();
        }
        if result == ReconcileResult::Panic {
            m.reconcile_panics.get_or_create(&self.owner.c()).inc();
        }
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.record(ReconcileResult::Error);
    }
}
