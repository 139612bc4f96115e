//! Where ekafka config becomes librdkafka properties.
//!
//! Each key's own mapping is declared with the key, in the settings struct
//! that has it (see the README's config tables, rendered from those
//! declarations); this module puts a client's properties together, in order:
//! the common properties of `[kafka]` (brokers, timeouts, SASL, TLS), the
//! client's own, then the raw `[kafka.librdkafka]` table, then the client's own
//! `librdkafka` table, so a raw property always wins over what ekafka derives.
//!
//! Always set for consumers: `enable.auto.commit = false` and
//! `enable.auto.offset.store = false`, because ekafka commits only what was
//! handled.
//!
//! Keys with no librdkafka counterpart are used by ekafka itself: `debug` and the
//! `enable*Interceptor` switches (interceptors), `producers.*.async` (write mode),
//! `commitInterval` (commit batching), `readLagInterval` (lag refresh),
//! `joinGroupBackoff` (delay before a failed member rejoins), `consumerGroups.*.timeout`
//! (commit and committed-offset requests). `retentionTime` takes only `"-1"`:
//! OffsetCommit dropped its retention field in Kafka 2.1, so the broker's
//! `offsets.retention.minutes` decides.

use super::consumer::{ConsumerAssignment, ConsumerConfig, ConsumerGroupConfig};
use super::kafka::Config;
use super::key::Settings;
use super::producer::ProducerConfig;
use super::properties::Properties;

/// Properties every client of this config shares (brokers, timeouts, SASL, TLS).
#[must_use]
pub fn common(config: &Config) -> Properties {
    let mut props = Properties::default();
    config.set_properties(&mut props);
    props
}

/// The properties of the producer named `name` (raw tables applied last).
#[must_use]
pub fn producer(config: &Config, name: &str, producer: &ProducerConfig) -> Properties {
    let mut props = common(config);
    props.set("client.id", format!("ekafka-producer-{name}"));
    producer.set_properties(&mut props);
    props.extend(&config.librdkafka);
    props.extend(&producer.librdkafka);
    props
}

/// The properties of the consumer named `name` (raw tables applied last).
#[must_use]
pub fn consumer(config: &Config, name: &str, consumer: &ConsumerConfig) -> Properties {
    let mut props = common(config);
    props.set("client.id", format!("ekafka-consumer-{name}"));
    consumer.set_properties(&mut props);
    if let ConsumerAssignment::Partition(_) = consumer.assignment {
        // librdkafka wants a group id even for a manual assignment; this one
        // is never joined or committed to.
        props.set(
            "group.id",
            crate::unique::unique_name(&format!("ekafka-{name}-unused")),
        );
    }
    props.extend(&config.librdkafka);
    props.extend(&consumer.librdkafka);
    props
}

/// The properties of the consumer group member named `name`, whose topics
/// have `partitions` partitions in all (raw tables applied last): exactly what
/// the member is created with. A member reads the count before it joins, and
/// librdkafka's prefetch (its queue per partition, and the fetch sizes) is
/// sized from it so that together the partitions take at most
/// `maxBufferedBytes`; with `None` (the count unknown) each partition gets a
/// 64th of it.
///
/// ```
/// let config = ekafka::config::Config::from_toml_str(
///     "[kafka]\nbrokers = [\"b:9092\"]\n\
///      [kafka.consumerGroups.g]\ngroupID = \"g\"\ntopic = \"t\"\nmaxBufferedBytes = 1048576\n",
///     "kafka",
/// )?;
/// let group = &config.consumer_groups["g"];
/// let properties = ekafka::config::librdkafka::consumer_group(&config, "g", group, Some(8));
/// // 1 MiB over 8 partitions, half of it queued: 64 KiB each.
/// assert_eq!(properties.get("queued.max.messages.kbytes"), Some("64"));
/// # Ok::<(), ekafka::config::ConfigError>(())
/// ```
#[must_use]
pub fn consumer_group(
    config: &Config,
    name: &str,
    group: &ConsumerGroupConfig,
    partitions: Option<usize>,
) -> Properties {
    let mut props = common(config);
    props.set("client.id", format!("ekafka-group-{name}"));
    group.set_properties(&mut props);
    for (key, value) in super::prefetch_properties(&group.flow, &group.fetch, partitions) {
        props.set(key, value);
    }
    props.extend(&config.librdkafka);
    props.extend(&group.librdkafka);
    props
}
