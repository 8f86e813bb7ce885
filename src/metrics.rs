//! Prometheus metrics (`GET /metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub kind: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone)]
pub struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        // 0.5 ms … ~8 s
        Histogram::new(exponential_buckets(0.0005, 2.0, 15))
    }
}

pub struct Metrics {
    registry: Registry,
    pub actors_active: Gauge,
    pub mailbox_depth: Gauge,
    pub activations: Counter,
    pub restarts: Counter,
    pub transitions: Family<TransitionLabels, Counter>,
    pub persist_seconds: Histogram,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_seconds: Family<RouteLabels, Histogram, LatencyBuckets>,
    pub payment_tasks_pending: Gauge,
    pub payment_task_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("contest");
        let actors_active = Gauge::default();
        let mailbox_depth = Gauge::default();
        let activations = Counter::default();
        let restarts = Counter::default();
        let transitions = Family::<TransitionLabels, Counter>::default();
        let persist_seconds = Histogram::new(exponential_buckets(0.0002, 2.0, 16));
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds = Family::new_with_constructor(LatencyBuckets);
        let payment_tasks_pending = Gauge::default();
        let payment_task_failures = Counter::default();
        registry.register(
            "actors_active",
            "Contest actors alive",
            actors_active.clone(),
        );
        registry.register(
            "actor_mailbox_depth",
            "Messages queued for contest actors",
            mailbox_depth.clone(),
        );
        registry.register(
            "actor_activations",
            "Contest actors activated",
            activations.clone(),
        );
        registry.register(
            "actor_restarts",
            "Contest actors restarted after a panic or a stop",
            restarts.clone(),
        );
        registry.register(
            "transitions",
            "Contest commands by kind and outcome",
            transitions.clone(),
        );
        registry.register(
            "persist_seconds",
            "Time to commit one transition",
            persist_seconds.clone(),
        );
        registry.register("http_requests", "HTTP requests", http_requests.clone());
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route",
            http_seconds.clone(),
        );
        registry.register(
            "payment_tasks_pending",
            "Outbox payment tasks not done yet",
            payment_tasks_pending.clone(),
        );
        registry.register(
            "payment_task_failures",
            "Failed payment-task attempts",
            payment_task_failures.clone(),
        );
        Metrics {
            registry,
            actors_active,
            mailbox_depth,
            activations,
            restarts,
            transitions,
            persist_seconds,
            http_requests,
            http_seconds,
            payment_tasks_pending,
            payment_task_failures,
        }
    }

    pub fn transition(&self, kind: &str, outcome: &str) {
        self.transitions
            .get_or_create(&TransitionLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// How many commits the contest actors made (for tests and the
    /// benchmark: group commit makes it smaller than the transitions).
    pub fn persist_seconds_count(&self) -> u64 {
        self.render()
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("contest_persist_seconds_count "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
