//! The App's HTTP endpoint, on `[kafka.observability] address`:
//! - `/metrics`: every metric of the component, in the OpenMetrics text
//!   format that Prometheus scrapes;
//! - `/health/live` and `/health/ready`: 200 when the check passes, 503
//!   with the problems otherwise (see `health`);
//! - `/status`: every client, its state, each consumer group's partitions,
//!   the last 15 minutes sampled (`history`), and each server's latest
//!   handler failures (JSON);
//! - `/`: a page showing `/status` at a glance, refreshing itself.

mod health;
mod history;
mod status;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, HttpServer};

use crate::component::Ekafka;
use crate::error::Error;
use crate::observe::ServerProbe;
use health::WatchedServer;
use history::History;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The status page: static, no build step, nothing loaded from elsewhere.
const PAGE: &str = include_str!("page.html");

/// What the handlers read, shared with the App.
struct Observed {
    kafka: Ekafka,
    servers: Mutex<Vec<WatchedServer>>,
    shutting_down: AtomicBool,
    stuck_after: Duration,
    history: History,
}

impl Observed {
    fn servers(&self) -> Vec<WatchedServer> {
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn health(&self) -> health::Health {
        health::check(
            &self.kafka,
            &self.servers(),
            self.shutting_down.load(Ordering::Relaxed),
            self.stuck_after,
        )
    }
}

/// A running endpoint; [`stop`](Self::stop) ends it.
pub(crate) struct Endpoint {
    handle: ServerHandle,
    addresses: Vec<SocketAddr>,
    observed: Arc<Observed>,
    /// Samples the histories every `historyInterval`.
    sampler: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Serves `kafka`'s endpoint on `address`, on one worker thread of its
    /// own, from within the running actix System.
    pub(crate) fn start(kafka: &Ekafka, address: &str) -> Result<Self, Error> {
        let observed = Arc::new(Observed {
            kafka: kafka.clone(),
            servers: Mutex::default(),
            shutting_down: AtomicBool::new(false),
            stuck_after: kafka.config().observability.stuck_after,
            history: History::new(kafka.config().observability.history_interval),
        });
        let data = web::Data::from(Arc::clone(&observed));
        let server = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/metrics", web::get().to(metrics))
                .route("/health/live", web::get().to(live))
                .route("/health/ready", web::get().to(ready))
                .route("/status", web::get().to(status))
                .route("/", web::get().to(page))
        })
        // One worker is plenty for scrapes and probes; the App owns signals.
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(address)
        .map_err(|source| Error::Endpoint {
            address: address.to_string(),
            source,
        })?;
        let addresses = server.addrs();
        let server = server.run();
        let handle = server.handle();
        actix::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "the observability endpoint stopped");
            }
        });
        tracing::info!(
            ?addresses,
            "serving /metrics, /health/live, /health/ready, /status"
        );
        let sampled = Arc::clone(&observed);
        let sampler = actix::spawn(async move {
            let mut every = tokio::time::interval(sampled.history.interval());
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                sampled.history.sample(&sampled.kafka).await;
            }
        });
        Ok(Endpoint {
            handle,
            addresses,
            observed,
            sampler,
        })
    }

    /// Where it listens (the port is the system's choice for `:0`).
    pub(crate) fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Watches consumer server `name`'s handler calls for liveness.
    pub(crate) fn watch_server(&self, name: &str, probe: Arc<ServerProbe>) {
        self.observed
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), probe));
    }

    /// The App began shutting down: it is no longer ready.
    pub(crate) fn shutting_down(&self) {
        self.observed.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Stops serving, letting requests in progress finish.
    pub(crate) async fn stop(self) {
        self.sampler.abort();
        self.handle.stop(true).await;
    }
}

async fn metrics(observed: web::Data<Observed>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(OPENMETRICS)
        .body(observed.kafka.metrics_text())
}

/// 200 with `{"status": "pass"}`, or 503 with the problems.
fn verdict(problems: Vec<String>) -> HttpResponse {
    let (code, status) = if problems.is_empty() {
        (StatusCode::OK, "pass")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "fail")
    };
    HttpResponse::build(code).json(serde_json::json!({ "status": status, "problems": problems }))
}

async fn live(observed: web::Data<Observed>) -> HttpResponse {
    verdict(observed.health().live)
}

async fn ready(observed: web::Data<Observed>) -> HttpResponse {
    verdict(observed.health().ready)
}

async fn status(observed: web::Data<Observed>) -> HttpResponse {
    let health = observed.health();
    let status = status::collect(
        &observed.kafka,
        &observed.servers(),
        health,
        &observed.history,
    )
    .await;
    HttpResponse::Ok().json(status)
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}
