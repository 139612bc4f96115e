//! An App showing itself: Prometheus metrics, health checks, a status
//! document and a status page.
//!
//!     cargo run --example observability
//!
//! Starts an embedded cluster, a consumer server handling orders (one in ten
//! fails once and is retried), a single consumer that reads nothing (its lag
//! grows) and a producer writing ten orders a second, and
//! serves the App's endpoint on 127.0.0.1:9464 until Ctrl-C, or for
//! `OBS_SECONDS` seconds when that is set.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use ekafka::config::ConsumerServerConfig;
use ekafka::server::HandlerError;
use ekafka::testing::EmbeddedCluster;
use ekafka::{App, ConsumedMessage, Ekafka, Message};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's
statisticsInterval = "2s"

[kafka.observability]
address = "127.0.0.1:9464"
historyInterval = "1s"    # the page's charts: a sample a second (5s by default)

[kafka.producers.orders]
topic = "orders"
batchTimeout = "5ms"

[kafka.consumerGroups.billing]
groupID = "billing"
topic = "orders"
maxWait = "100ms"
readLagInterval = "1s"
sessionTimeout = "6s"     # a quick takeover after a member leaves (see the README's embedded-cluster limits)
heartbeatInterval = "1s"

[kafka.consumers.audit]  # a single consumer that reads nothing: its lag grows
topic = "orders"
partition = 0

[kafkaConsumerServers.billing]
consumerGroupName = "billing"
retryBackoff = "50ms"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: Option<u64> = match std::env::var("OBS_SECONDS") {
        Ok(text) => Some(
            text.parse()
                .map_err(|_| format!("OBS_SECONDS must be a number of seconds, not {text:?}"))?,
        ),
        Err(_) => None,
    };
    actix::System::new().block_on(async move {
        let cluster = EmbeddedCluster::start()?;
        cluster.create_topic("orders")?;
        let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
            .with_brokers(cluster.brokers())
            .build()?;
        let server = ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.billing")?;

        // One order in ten fails the first time it is handled.
        let failed_once: Rc<RefCell<HashSet<(i32, i64)>>> = Rc::default();
        let app = App::new(kafka.clone()).each_message(server, move |message: ConsumedMessage| {
            let failed_once = Rc::clone(&failed_once);
            async move {
                // Handling takes a little while, so lag and durations show.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let at = (message.partition(), message.offset());
                if message.offset() % 10 == 3 && failed_once.borrow_mut().insert(at) {
                    return Err(HandlerError::recoverable("billing service busy"));
                }
                Ok(())
            }
        });
        // Started, never read: the page charts its lag growing.
        let _audit = kafka.consumer("audit")?;
        let handle = app.handle();
        let serving = actix::spawn(app.serve());
        let address = tokio::time::timeout(Duration::from_secs(30), handle.endpoint())
            .await
            .map_err(|_| "the endpoint did not start within 30s")?;
        println!("serving on http://{address}/ :");
        for path in ["", "metrics", "health/live", "health/ready", "status"] {
            println!("  http://{address}/{path}");
        }
        match seconds {
            Some(seconds) => println!("for {seconds} s (OBS_SECONDS)"),
            None => println!("until Ctrl-C"),
        }

        // Ten orders a second until the App stops or the time is up.
        let producer = kafka.producer("orders")?;
        let writing = actix::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            for i in 0_u64.. {
                every.tick().await;
                let order = Message::new(format!("order-{i}")).with_key(format!("{}", i % 7));
                match producer.write([order]).await {
                    Ok(report) if report.is_success() => {}
                    Ok(report) => {
                        eprintln!("order-{i} not written: {:?}", report.failures().next())
                    }
                    // Closed: the App is shutting down.
                    Err(_) => return,
                }
            }
        });
        if let Some(seconds) = seconds {
            let handle = handle.clone();
            actix::spawn(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                handle.shutdown();
            });
        }
        let served = serving
            .await
            .map_err(|e| format!("the App panicked: {e}"))?;
        writing.abort();
        served?;
        println!("stopped");
        Ok(())
    })
}
