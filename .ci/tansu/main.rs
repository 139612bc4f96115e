//! The tansu 0.6.0 command line (`broker`, `topic`, `user`, ...) with SASL
//! PLAIN available, for ekafka's end-to-end tier.

#[tokio::main]
async fn main() -> tansu_cli::Result<tansu_sans_io::ErrorCode> {
    // tansu's own log output (errors a broker hits go to its log file).
    let _tracing = tansu_broker::otel::init(tansu_broker::TracingFormat::Text)
        .map_err(|e| tansu_cli::Error::Box(Box::new(e)))?;
    tansu_cli::Cli::main().await
}
