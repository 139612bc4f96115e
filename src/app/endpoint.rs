//! The App's HTTP endpoint, on `[kafka.observability] address`: `/metrics`
//! (every metric of the component, in the OpenMetrics text format that
//! Prometheus scrapes).

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpResponse, HttpServer};

use crate::component::Ekafka;
use crate::error::Error;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running endpoint; [`stop`](Self::stop) ends it.
pub(crate) struct Endpoint {
    handle: ServerHandle,
    addresses: Vec<SocketAddr>,
}

impl Endpoint {
    /// Serves `kafka`'s endpoint on `address`, on one worker thread of its
    /// own, from within the running actix System.
    pub(crate) fn start(kafka: &Ekafka, address: &str) -> Result<Self, Error> {
        let kafka = web::Data::new(kafka.clone());
        let server = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(kafka.clone())
                .route("/metrics", web::get().to(metrics))
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
        tracing::info!(?addresses, "serving /metrics");
        Ok(Endpoint { handle, addresses })
    }

    /// Where it listens (the port is the system's choice for `:0`).
    pub(crate) fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Stops serving, letting requests in progress finish.
    pub(crate) async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn metrics(kafka: web::Data<Ekafka>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(OPENMETRICS)
        .body(kafka.metrics_text())
}
