//! Every config key, described once: its table, spelling, default and what it
//! does (the librdkafka property it sets, or ekafka's own use), as the
//! README's config tables show them.
//!
//! Tests hold everything else to this description:
//! - the README's config tables are rendered from it (run the tests with
//!   `EKAFKA_BLESS=1` to rewrite them after changing a row);
//! - the reader asks for exactly the keys described, table by table;
//! - every default written as a TOML value is the real default: a config
//!   that sets the key to it reads the same as one that leaves it out.

use std::collections::BTreeSet;

use super::reader::asked;
use super::{Config, ConsumerServerConfig, RestartPolicy, RestartSettings};

/// A README config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Kafka,
    Producer,
    Consumers,
    Server,
    Restart,
}

/// A row of the consumers' table that applies to one kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    Groups,
    Consumers,
}

/// One row of a README config table: one key, or several described together.
struct Row {
    section: Table,
    /// `x.y` is key `y` of the nested table `x`.
    keys: &'static [&'static str],
    only: Option<Only>,
    /// Per key, its default as a TOML value, when it has one to write.
    literals: &'static [Option<&'static str>],
    default: &'static str,
    meaning: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        section: Table::Kafka,
        keys: &["brokers"],
        only: None,
        literals: &[None],
        default: "required, not empty",
        meaning: "`bootstrap.servers`",
    },
    Row {
        section: Table::Kafka,
        keys: &["debug"],
        only: None,
        literals: &[Some("false")],
        default: "`false`",
        meaning: "print every request and response (debug interceptor)",
    },
    Row {
        section: Table::Kafka,
        keys: &["client.timeout"],
        only: None,
        literals: &[Some("\"10s\"")],
        default: "`\"10s\"`",
        meaning: "`socket.connection.setup.timeout.ms`",
    },
    Row {
        section: Table::Kafka,
        keys: &["saslMechanism"],
        only: None,
        literals: &[None],
        default: "none",
        meaning: "`sasl.mechanism` + `security.protocol = SASL_PLAINTEXT` (`SASL_SSL` with `[kafka.tls]`)",
    },
    Row {
        section: Table::Kafka,
        keys: &["saslUserName", "saslPassword"],
        only: None,
        literals: &[None, None],
        default: "none",
        meaning: "`sasl.username` / `sasl.password`",
    },
    Row {
        section: Table::Kafka,
        keys: &["tls"],
        only: None,
        literals: &[None],
        default: "none",
        meaning: "a table: TLS is on when it is present (`security.protocol = SSL`), unless `enabled = false`",
    },
    Row {
        section: Table::Kafka,
        keys: &["tls.enabled"],
        only: None,
        literals: &[Some("true")],
        default: "`true`",
        meaning: "`false` turns TLS off while keeping the table",
    },
    Row {
        section: Table::Kafka,
        keys: &["tls.caFile"],
        only: None,
        literals: &[None],
        default: "the system's CA store",
        meaning: "`ssl.ca.location`; must be a readable file",
    },
    Row {
        section: Table::Kafka,
        keys: &["tls.certFile", "tls.keyFile"],
        only: None,
        literals: &[None, None],
        default: "none (both or neither)",
        meaning: "`ssl.certificate.location` / `ssl.key.location`: the client certificate for mutual TLS",
    },
    Row {
        section: Table::Kafka,
        keys: &["tls.keyPassword"],
        only: None,
        literals: &[None],
        default: "none",
        meaning: "`ssl.key.password`; never printed",
    },
    Row {
        section: Table::Kafka,
        keys: &["tls.verifyHostname"],
        only: None,
        literals: &[Some("true")],
        default: "`true`",
        meaning: "`ssl.endpoint.identification.algorithm` = `https` (`none` when false)",
    },
    Row {
        section: Table::Kafka,
        keys: &["enableTraceInterceptor"],
        only: None,
        literals: &[Some("true")],
        default: "`true`",
        meaning: "add a W3C `traceparent` header to produced messages that have none",
    },
    Row {
        section: Table::Kafka,
        keys: &["enableMetricInterceptor"],
        only: None,
        literals: &[Some("true")],
        default: "`true`",
        meaning: "count operations and time them; read with `Ekafka::metrics()`",
    },
    Row {
        section: Table::Kafka,
        keys: &["enableAccessInterceptor"],
        only: None,
        literals: &[Some("false")],
        default: "`false`",
        meaning: "one `tracing` event per operation (target `ekafka::access`)",
    },
    Row {
        section: Table::Kafka,
        keys: &["enableAccessInterceptorReq", "enableAccessInterceptorRes"],
        only: None,
        literals: &[Some("false"), Some("false")],
        default: "`false`",
        meaning: "include the messages / the results in it",
    },
    Row {
        section: Table::Kafka,
        keys: &["librdkafka"],
        only: None,
        literals: &[None],
        default: "empty",
        meaning: "raw properties for every client",
    },
    Row {
        section: Table::Producer,
        keys: &["topic"],
        only: None,
        literals: &[None],
        default: "none (then each message names its topic)",
        meaning: "",
    },
    Row {
        section: Table::Producer,
        keys: &["balancer"],
        only: None,
        literals: &[Some("\"roundRobin\"")],
        default: "`\"roundRobin\"`",
        meaning: "`hash` → `partitioner = murmur2_random` (Java-compatible: equal keys, same partition); `roundRobin` or a registered name → ekafka's partitioner callback, `sticky.partitioning.linger.ms = 0`",
    },
    Row {
        section: Table::Producer,
        keys: &["maxAttempts"],
        only: None,
        literals: &[Some("10")],
        default: "`10`",
        meaning: "`message.send.max.retries = maxAttempts − 1`",
    },
    Row {
        section: Table::Producer,
        keys: &["batchSize"],
        only: None,
        literals: &[Some("100")],
        default: "`100`",
        meaning: "`batch.num.messages`",
    },
    Row {
        section: Table::Producer,
        keys: &["batchBytes"],
        only: None,
        literals: &[Some("1048576")],
        default: "`1048576`",
        meaning: "`batch.size`",
    },
    Row {
        section: Table::Producer,
        keys: &["batchTimeout"],
        only: None,
        literals: &[Some("\"1s\"")],
        default: "`\"1s\"`",
        meaning: "`linger.ms`",
    },
    Row {
        section: Table::Producer,
        keys: &["readTimeout"],
        only: None,
        literals: &[Some("\"10s\"")],
        default: "`\"10s\"`",
        meaning: "`request.timeout.ms`",
    },
    Row {
        section: Table::Producer,
        keys: &["writeTimeout"],
        only: None,
        literals: &[Some("\"10s\"")],
        default: "`\"10s\"`",
        meaning: "`message.timeout.ms` (delivery deadline, retries included); also the `close` flush deadline. A write to a topic the cluster does not have (and may not create) fails after at most a second (`topic.metadata.propagation.max.ms`, librdkafka's 30 s otherwise) with `UnknownTopicOrPartition`, the reason naming the topic; later writes to it fail at once",
    },
    Row {
        section: Table::Producer,
        keys: &["requiredAcks"],
        only: None,
        literals: &[Some("-1")],
        default: "`-1` (all)",
        meaning: "`acks`; with `-1` and `maxAttempts > 1` also `enable.idempotence = true`",
    },
    Row {
        section: Table::Producer,
        keys: &["async"],
        only: None,
        literals: &[Some("false")],
        default: "`false`",
        meaning: "write answers once queued; failures go to the error subscriber",
    },
    Row {
        section: Table::Producer,
        keys: &["compression"],
        only: None,
        literals: &[Some("0")],
        default: "`0`",
        meaning: "`compression.codec`: 1 gzip, 2 snappy, 3 lz4, 4 zstd",
    },
    Row {
        section: Table::Producer,
        keys: &["librdkafka"],
        only: None,
        literals: &[None],
        default: "empty",
        meaning: "raw properties for this producer",
    },
    Row {
        section: Table::Consumers,
        keys: &["topic"],
        only: None,
        literals: &[None],
        default: "required (or `topics`)",
        meaning: "subscription",
    },
    Row {
        section: Table::Consumers,
        keys: &["topics"],
        only: Some(Only::Groups),
        literals: &[None],
        default: "none",
        meaning: "several topics, `[\"a\", \"b\"]`, instead of `topic`",
    },
    Row {
        section: Table::Consumers,
        keys: &["groupID"],
        only: None,
        literals: &[None],
        default: "consumers: none (then `partition`); groups: required",
        meaning: "`group.id`",
    },
    Row {
        section: Table::Consumers,
        keys: &["partition"],
        only: Some(Only::Consumers),
        literals: &[Some("0")],
        default: "`0` when no `groupID`; not together with `groupID`",
        meaning: "the one partition read",
    },
    Row {
        section: Table::Consumers,
        keys: &["startOffset"],
        only: None,
        literals: &[Some("-2")],
        default: "`-2` (first); `-1` last; number or string",
        meaning: "`auto.offset.reset` = `earliest` / `latest`",
    },
    Row {
        section: Table::Consumers,
        keys: &["minBytes"],
        only: None,
        literals: &[Some("1")],
        default: "`1`",
        meaning: "`fetch.min.bytes`",
    },
    Row {
        section: Table::Consumers,
        keys: &["maxBytes"],
        only: None,
        literals: &[Some("1048576")],
        default: "`1048576`",
        meaning: "`max.partition.fetch.bytes`",
    },
    Row {
        section: Table::Consumers,
        keys: &["maxWait"],
        only: None,
        literals: &[Some("\"500ms\"")],
        default: "`\"500ms\"` (librdkafka's; Go: `\"10s\"`)",
        meaning: "`fetch.wait.max.ms`; at most `50ms` for groups. librdkafka's fetch covers all of a broker's partitions and leaves out those whose prefetch queue is full, so a long wait on a quiet one holds a busy one up (kafka-go, whose 10s default this was, fetches each partition on its own). The price: an idle group member asks each broker for data up to 20 times a second",
    },
    Row {
        section: Table::Consumers,
        keys: &["groupProtocol"],
        only: None,
        literals: &[Some("\"classic\"")],
        default: "`\"classic\"`",
        meaning: "`group.protocol`; `\"consumer\"` selects KIP-848 (Kafka 4), where the broker assigns partitions and sets the timings, so `heartbeatInterval`, `sessionTimeout` and `groupBalancers` are errors with it",
    },
    Row {
        section: Table::Consumers,
        keys: &["heartbeatInterval"],
        only: None,
        literals: &[Some("\"3s\"")],
        default: "`\"3s\"`",
        meaning: "`heartbeat.interval.ms` (classic protocol)",
    },
    Row {
        section: Table::Consumers,
        keys: &["sessionTimeout"],
        only: None,
        literals: &[Some("\"30s\"")],
        default: "`\"30s\"`",
        meaning: "`session.timeout.ms` (classic protocol)",
    },
    Row {
        section: Table::Consumers,
        keys: &["rebalanceTimeout"],
        only: None,
        literals: &[Some("\"30s\"")],
        default: "`\"30s\"`",
        meaning: "`max.poll.interval.ms` (librdkafka's JoinGroup rebalance timeout)",
    },
    Row {
        section: Table::Consumers,
        keys: &["readBackoffMin", "readBackoffMax"],
        only: None,
        literals: &[Some("\"100ms\""), Some("\"1s\"")],
        default: "`\"100ms\"` / `\"1s\"`",
        meaning: "`retry.backoff.ms` / `retry.backoff.max.ms`",
    },
    Row {
        section: Table::Consumers,
        keys: &["watchPartitionChanges"],
        only: None,
        literals: &[Some("false")],
        default: "`false`",
        meaning: "when true, `topic.metadata.refresh.interval.ms = partitionWatchInterval`",
    },
    Row {
        section: Table::Consumers,
        keys: &["partitionWatchInterval"],
        only: None,
        literals: &[Some("\"5s\"")],
        default: "`\"5s\"`",
        meaning: "see above",
    },
    Row {
        section: Table::Consumers,
        keys: &["commitInterval"],
        only: None,
        literals: &[Some("\"0\"")],
        default: "`\"0\"` (commit as soon as acknowledged, one commit in flight at a time)",
        meaning: "ekafka's commit batching",
    },
    Row {
        section: Table::Consumers,
        keys: &["readLagInterval"],
        only: None,
        literals: &[Some("\"1m\"")],
        default: "`\"1m\"`; negative disables",
        meaning: "ekafka's lag refresh",
    },
    Row {
        section: Table::Consumers,
        keys: &["joinGroupBackoff"],
        only: None,
        literals: &[Some("\"5s\"")],
        default: "`\"5s\"`",
        meaning: "ekafka's delay before a failed member rejoins",
    },
    Row {
        section: Table::Consumers,
        keys: &["retentionTime"],
        only: None,
        literals: &[None],
        default: "consumers `\"24h\"`, groups `\"-1\"`",
        meaning: "accepted for compatibility; Kafka ≥ 2.1 ignores it (the broker's `offsets.retention.minutes` applies)",
    },
    Row {
        section: Table::Consumers,
        keys: &["timeout"],
        only: Some(Only::Groups),
        literals: &[Some("\"5s\"")],
        default: "`\"5s\"`",
        meaning: "ekafka: how long a commit may go unconfirmed before it counts as failed, and the timeout of committed-offset requests",
    },
    Row {
        section: Table::Consumers,
        keys: &["groupBalancers"],
        only: Some(Only::Groups),
        literals: &[Some("[\"range\", \"roundRobin\"]")],
        default: "`[\"range\", \"roundRobin\"]`",
        meaning: "`partition.assignment.strategy` (also `cooperativeSticky`; classic protocol)",
    },
    Row {
        section: Table::Consumers,
        keys: &["maxBuffered"],
        only: Some(Only::Groups),
        literals: &[Some("10000")],
        default: "`10000`",
        meaning: "ekafka: the most messages held between fetch and acknowledgement; also `queued.min.messages`",
    },
    Row {
        section: Table::Consumers,
        keys: &["maxBufferedBytes"],
        only: Some(Only::Groups),
        literals: &[Some("16777216")],
        default: "`16777216` (16 MiB)",
        meaning: "ekafka: the most bytes (keys, values, headers) held between fetch and acknowledgement; sizes librdkafka's prefetch (see Memory below)",
    },
    Row {
        section: Table::Consumers,
        keys: &["deliveryBatch"],
        only: Some(Only::Groups),
        literals: &[Some("500")],
        default: "`500`",
        meaning: "ekafka: the most messages of one partition per batch to a subscriber",
    },
    Row {
        section: Table::Consumers,
        keys: &["drainTimeout"],
        only: Some(Only::Groups),
        literals: &[Some("\"10s\"")],
        default: "`\"10s\"`",
        meaning: "ekafka: how long revoke and close wait for outstanding acknowledgements",
    },
    Row {
        section: Table::Consumers,
        keys: &["librdkafka"],
        only: None,
        literals: &[None],
        default: "empty",
        meaning: "raw properties",
    },
    Row {
        section: Table::Server,
        keys: &["consumerName", "consumerGroupName"],
        only: None,
        literals: &[None, None],
        default: "at least one of the two",
        meaning: "the `[kafka.consumers.NAME]` (manual on-start mode) / `[kafka.consumerGroups.NAME]` it drives",
    },
    Row {
        section: Table::Server,
        keys: &["debug"],
        only: None,
        literals: &[Some("false")],
        default: "`false`",
        meaning: "print every message handled and its result",
    },
    Row {
        section: Table::Server,
        keys: &["retries"],
        only: None,
        literals: &[Some("3")],
        default: "`3`",
        meaning: "in-place retries of a recoverable handler failure",
    },
    Row {
        section: Table::Server,
        keys: &["retryBackoff", "retryBackoffMax"],
        only: None,
        literals: &[Some("\"100ms\""), Some("\"10s\"")],
        default: "`\"100ms\"` / `\"10s\"`",
        meaning: "the first retry's delay, doubling with jitter up to the longest",
    },
    Row {
        section: Table::Server,
        keys: &["deadLetterProducer"],
        only: None,
        literals: &[None],
        default: "none",
        meaning: "a `[kafka.producers.NAME]` that writes messages that failed for good",
    },
    Row {
        section: Table::Server,
        keys: &["deadLetterTopic"],
        only: None,
        literals: &[None],
        default: "that producer's `topic`",
        meaning: "where they go",
    },
    Row {
        section: Table::Server,
        keys: &["deadLetterLimit"],
        only: None,
        literals: &[Some("100")],
        default: "`100`",
        meaning: "the most messages one partition may dead-letter within `deadLetterWindow`; one more stops the partition and escalates; `0` for no limit",
    },
    Row {
        section: Table::Server,
        keys: &["deadLetterWindow"],
        only: None,
        literals: &[Some("\"1m\"")],
        default: "`\"1m\"`",
        meaning: "the window `deadLetterLimit` counts over",
    },
    Row {
        section: Table::Restart,
        keys: &["maxRestarts"],
        only: None,
        literals: &[Some("5")],
        default: "`5`",
        meaning: "restarts allowed within `restartWindow`; one failure more escalates (`0`: never restart)",
    },
    Row {
        section: Table::Restart,
        keys: &["restartWindow"],
        only: None,
        literals: &[Some("\"60s\"")],
        default: "`\"60s\"`",
        meaning: "the sliding window `maxRestarts` counts over",
    },
    Row {
        section: Table::Restart,
        keys: &["restartBackoff"],
        only: None,
        literals: &[Some("\"100ms\"")],
        default: "`\"100ms\"`",
        meaning: "delay before the first restart; doubles for each next one, with jitter",
    },
    Row {
        section: Table::Restart,
        keys: &["restartBackoffMax"],
        only: None,
        literals: &[Some("\"10s\"")],
        default: "`\"10s\"`",
        meaning: "the longest delay",
    },
];

const ALL: [Table; 5] = [
    Table::Kafka,
    Table::Producer,
    Table::Consumers,
    Table::Server,
    Table::Restart,
];

impl Table {
    fn heading(self) -> &'static str {
        match self {
            Table::Kafka => "### `[kafka]`",
            Table::Producer => "### `[kafka.producers.NAME]`",
            Table::Consumers => "### `[kafka.consumers.NAME]` and `[kafka.consumerGroups.NAME]`",
            Table::Server => "### `[kafkaConsumerServers.NAME]`",
            Table::Restart => {
                "### Restart keys (producers, consumers, consumer groups, consumer servers)"
            }
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Table::Kafka => "| key | default | meaning / librdkafka property |",
            Table::Producer => "| key | default | librdkafka property |",
            Table::Consumers => "| key | default | librdkafka property / use |",
            Table::Server | Table::Restart => "| key | default | meaning |",
        }
    }

    /// The config tables the keys of this README table belong to.
    fn tables(self, only: Option<Only>) -> Vec<&'static str> {
        const CONSUMERS: &str = "kafka.consumers.NAME";
        const GROUPS: &str = "kafka.consumerGroups.NAME";
        match (self, only) {
            (Table::Kafka, _) => vec!["kafka"],
            (Table::Producer, _) => vec!["kafka.producers.NAME"],
            (Table::Consumers, None) => vec![CONSUMERS, GROUPS],
            (Table::Consumers, Some(Only::Consumers)) => vec![CONSUMERS],
            (Table::Consumers, Some(Only::Groups)) => vec![GROUPS],
            (Table::Server, _) => vec!["kafkaConsumerServers.NAME"],
            (Table::Restart, _) => vec![
                "kafka.producers.NAME",
                CONSUMERS,
                GROUPS,
                "kafkaConsumerServers.NAME",
            ],
        }
    }
}

/// The README table of `section`, from its header to its last row.
fn render(section: Table) -> String {
    let mut text = format!("{}\n|---|---|---|\n", section.columns());
    for row in ROWS.iter().filter(|r| r.section == section) {
        let keys: Vec<String> = row.keys.iter().map(|k| format!("`{k}`")).collect();
        let only = match row.only {
            Some(Only::Groups) => " (groups)",
            Some(Only::Consumers) => " (consumers)",
            None => "",
        };
        let meaning = if row.meaning.is_empty() {
            String::new()
        } else {
            format!(" {}", row.meaning)
        };
        text.push_str(&format!(
            "| {}{only} | {} |{meaning} |\n",
            keys.join(" / "),
            row.default
        ));
    }
    text
}

/// (table, key) of every key described; `x.y` also describes key `x`.
fn described() -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    for row in ROWS {
        for table in row.section.tables(row.only) {
            for key in row.keys {
                match key.split_once('.') {
                    Some((nested, key)) => {
                        keys.insert((table.to_string(), nested.to_string()));
                        keys.insert((format!("{table}.{nested}"), key.to_string()));
                    }
                    None => {
                        keys.insert((table.to_string(), key.to_string()));
                    }
                }
            }
        }
    }
    keys
}

/// A config with every table present, so every key is asked for; `extra`
/// goes into the tables `table` names (`kafka.producers.NAME` and so on).
fn config_with(table: &str, extra: &str) -> String {
    let mut text = String::new();
    let tables: [(&str, &str, &str); 7] = [
        ("kafka", "[kafka]", "brokers = [\"b:1\"]"),
        ("kafka.client", "[kafka.client]", ""),
        ("kafka.tls", "[kafka.tls]", ""),
        ("kafka.producers.NAME", "[kafka.producers.p]", ""),
        (
            "kafka.consumers.NAME",
            "[kafka.consumers.c]",
            "topic = \"t\"",
        ),
        (
            "kafka.consumerGroups.NAME",
            "[kafka.consumerGroups.g]",
            "topic = \"t\"\ngroupID = \"g\"",
        ),
        (
            "kafkaConsumerServers.NAME",
            "[kafkaConsumerServers.s]",
            "consumerGroupName = \"g\"\ndeadLetterProducer = \"p\"",
        ),
    ];
    for (name, header, keys) in tables {
        text.push_str(&format!("{header}\n{keys}\n"));
        if name == table {
            text.push_str(&format!("{extra}\n"));
        }
    }
    text
}

/// The config and server config of `text`, each client's restart keys
/// resolved against the default policy: an unset key and one set to its
/// default mean the same.
fn read(text: &str) -> (Config, ConsumerServerConfig) {
    let mut config = Config::from_toml_str(text, "kafka").expect("the config reads");
    let mut server = ConsumerServerConfig::from_toml_str(text, "kafkaConsumerServers.s")
        .expect("the server config reads");
    let default = RestartPolicy::default();
    let resolve = |settings: &mut RestartSettings| {
        let policy = settings.apply(&default);
        *settings = RestartSettings {
            max_restarts: Some(policy.max_restarts),
            window: Some(policy.window),
            backoff: Some(policy.backoff_min),
            backoff_max: Some(policy.backoff_max),
        };
    };
    config
        .producers
        .values_mut()
        .for_each(|p| resolve(&mut p.restart));
    config
        .consumers
        .values_mut()
        .for_each(|c| resolve(&mut c.restart));
    config
        .consumer_groups
        .values_mut()
        .for_each(|g| resolve(&mut g.restart));
    resolve(&mut server.restart);
    (config, server)
}

#[test]
fn the_reader_asks_for_every_key_described_and_no_other() {
    asked::take();
    read(&config_with("", ""));
    let read: BTreeSet<(String, String)> = asked::take()
        .into_iter()
        // The tables of named clients are described by tables of their own.
        .filter(|(table, key)| {
            !(table == "kafka" && ["producers", "consumers", "consumerGroups"].contains(&&**key))
        })
        .collect();
    let described = described();
    let undescribed: Vec<_> = read.difference(&described).collect();
    let unread: Vec<_> = described.difference(&read).collect();
    assert!(
        undescribed.is_empty() && unread.is_empty(),
        "read but not described in config::keys: {undescribed:?}\n\
         described but never read: {unread:?}"
    );
}

#[test]
fn every_default_described_is_the_real_default() {
    let plain = read(&config_with("", ""));
    for row in ROWS {
        for (key, literal) in row.keys.iter().zip(row.literals) {
            let Some(literal) = literal else { continue };
            for table in row.section.tables(row.only) {
                let (table, key) = match key.split_once('.') {
                    Some((nested, key)) => (format!("{table}.{nested}"), key),
                    None => (table.to_string(), *key),
                };
                let text = config_with(&table, &format!("{key} = {literal}"));
                assert_eq!(
                    read(&text),
                    plain,
                    "{table}.{key} = {literal} is not the default the README gives"
                );
            }
        }
    }
}

#[test]
fn the_readme_config_tables_are_rendered_from_the_description() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md readable");
    let mut blessed = readme.clone();
    let mut stale = Vec::new();
    for section in ALL {
        let start = readme
            .find(section.heading())
            .expect("the section's heading");
        let table_start = start + readme[start..].find("\n| key |").expect("its table") + 1;
        let table_end = table_start + readme[table_start..].find("\n\n").expect("its end") + 1;
        let shown = &readme[table_start..table_end];
        let rendered = render(section);
        if shown != rendered {
            stale.push(section.heading());
            blessed = blessed.replacen(shown, &rendered, 1);
        }
    }
    if !stale.is_empty() && std::env::var_os("EKAFKA_BLESS").is_some() {
        std::fs::write(path, blessed).expect("README.md written");
        return;
    }
    assert!(
        stale.is_empty(),
        "README config tables differ from src/config/keys.rs: {stale:?}; \
         run `EKAFKA_BLESS=1 cargo test --lib config::keys` to rewrite them"
    );
}
