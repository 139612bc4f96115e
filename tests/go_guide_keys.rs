//! Every key the Go ekafka guide documents, for every section, and what uses
//! it here: a librdkafka property it sets, a behaviour a named test shows, or
//! a refusal with a reason. A key read and then ignored would pass none of
//! these checks: a property must change, a behaviour's key must change the
//! parsed config and its test must exist, a refusal must name the key.

use ekafka::config::{librdkafka, Config, ConsumerServerConfig};
use ekafka::Ekafka;

/// Where a key lives.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Section {
    /// `[kafka]` (a dotted key such as `client.timeout` goes to its table).
    Kafka,
    Producer,
    /// A consumer with a `groupID`.
    GroupConsumer,
    /// A consumer reading one partition.
    PartitionConsumer,
    ConsumerGroup,
    Server,
}

/// What uses a key.
#[derive(Clone, Copy, Debug)]
enum Use {
    /// The librdkafka property it sets.
    Property(&'static str),
    /// A behaviour of ekafka's, shown by the test `file::function`.
    Behaviour(&'static str),
    /// Refused for this value, with a reason containing this.
    Refused(&'static str),
}

use Section::*;
use Use::*;

/// (section, key, a value other than the default, keys the base needs, use).
const GUIDE_KEYS: &[(Section, &str, &str, &str, Use)] = &[
    (Kafka, "debug", "true", "", Behaviour("tests/interceptors.rs::debug_prints_each_request_and_its_response")),
    (Kafka, "brokers", "[\"other:9092\"]", "", Property("bootstrap.servers")),
    (Kafka, "client.timeout", "\"3s\"", "", Property("socket.connection.setup.timeout.ms")),
    (Kafka, "saslMechanism", "\"SCRAM-SHA-512\"", SASL, Property("sasl.mechanism")),
    (Kafka, "saslUserName", "\"bob\"", SASL, Property("sasl.username")),
    (Kafka, "saslPassword", "\"other\"", SASL, Property("sasl.password")),
    (Kafka, "enableTraceInterceptor", "false", "", Behaviour("tests/tracing.rs::with_enable_trace_interceptor_false_a_write_in_a_trace_carries_no_traceparent")),
    (Kafka, "enableAccessInterceptor", "true", "", Behaviour("tests/access_log.rs::the_access_log_shows_each_write_and_its_messages_and_results_only_when_asked")),
    (Kafka, "enableAccessInterceptorReq", "true", "", Behaviour("tests/access_log.rs::the_access_log_shows_each_write_and_its_messages_and_results_only_when_asked")),
    (Kafka, "enableAccessInterceptorRes", "true", "", Behaviour("tests/access_log.rs::the_access_log_shows_each_write_and_its_messages_and_results_only_when_asked")),
    (Kafka, "enableMetricInterceptor", "false", "", Behaviour("tests/interceptors.rs::metrics_count_operations_and_messages")),
    (Producer, "topic", "\"other\"", "", Behaviour("tests/producer.rs::every_message_is_delivered_once_in_order_per_partition")),
    (Producer, "balancer", "\"hash\"", "", Property("partitioner")),
    (Producer, "maxAttempts", "3", "", Property("message.send.max.retries")),
    (Producer, "batchSize", "1000", "", Property("batch.num.messages")),
    (Producer, "batchBytes", "2097152", "", Property("batch.size")),
    (Producer, "batchTimeout", "\"10ms\"", "", Property("linger.ms")),
    (Producer, "readTimeout", "\"5s\"", "", Property("request.timeout.ms")),
    (Producer, "writeTimeout", "\"20s\"", "", Property("message.timeout.ms")),
    (Producer, "requiredAcks", "1", "", Property("acks")),
    (Producer, "async", "true", "", Behaviour("tests/producer.rs::async_writes_return_once_queued_and_failures_reach_the_subscriber")),
    (Producer, "compression", "4", "", Property("compression.codec")),
    (GroupConsumer, "topic", "\"other\"", "", Behaviour("tests/consumer.rs::group_member_reads_commits_and_resumes")),
    (GroupConsumer, "groupID", "\"other\"", "", Property("group.id")),
    (PartitionConsumer, "partition", "2", "", Behaviour("tests/consumer.rs::one_partition_fetch_seek_and_lag")),
    (GroupConsumer, "minBytes", "10", "", Property("fetch.min.bytes")),
    (GroupConsumer, "maxBytes", "2097152", "", Property("max.partition.fetch.bytes")),
    (GroupConsumer, "maxWait", "\"1s\"", "", Property("fetch.wait.max.ms")),
    (GroupConsumer, "readLagInterval", "\"5s\"", "", Behaviour("tests/observability.rs::a_single_consumers_lag_is_a_metric_every_read_lag_interval")),
    (GroupConsumer, "watchPartitionChanges", "true", "", Property("topic.metadata.refresh.interval.ms")),
    (GroupConsumer, "partitionWatchInterval", "\"10s\"", "watchPartitionChanges = true", Property("topic.metadata.refresh.interval.ms")),
    (GroupConsumer, "rebalanceTimeout", "\"60s\"", "", Property("max.poll.interval.ms")),
    (GroupConsumer, "heartbeatInterval", "\"1s\"", "", Property("heartbeat.interval.ms")),
    (GroupConsumer, "commitInterval", "\"1s\"", "", Behaviour("tests/consumer.rs::with_a_commit_interval_commits_land_within_it_without_a_call_per_message")),
    (GroupConsumer, "sessionTimeout", "\"45s\"", "", Property("session.timeout.ms")),
    (GroupConsumer, "joinGroupBackoff", "\"1s\"", "", Behaviour("tests/config.rs::join_group_backoff_is_a_failed_members_first_restart_delay")),
    (GroupConsumer, "retentionTime", "\"24h\"", "", Refused("KIP-211")),
    (GroupConsumer, "startOffset", "-1", "", Property("auto.offset.reset")),
    (GroupConsumer, "readBackoffMin", "\"200ms\"", "", Property("retry.backoff.ms")),
    (GroupConsumer, "readBackoffMax", "\"2s\"", "", Property("retry.backoff.max.ms")),
    (PartitionConsumer, "heartbeatInterval", "\"1s\"", "", Refused("without a groupID")),
    (PartitionConsumer, "commitInterval", "\"1s\"", "", Refused("without a groupID")),
    (PartitionConsumer, "joinGroupBackoff", "\"1s\"", "", Refused("without a groupID")),
    (PartitionConsumer, "readLagInterval", "\"5s\"", "", Behaviour("tests/observability.rs::a_single_consumers_lag_is_a_metric_every_read_lag_interval")),
    (ConsumerGroup, "groupID", "\"other\"", "", Property("group.id")),
    (ConsumerGroup, "topic", "\"other\"", "", Behaviour("tests/consumer_group.rs::every_message_arrives_once_in_order_per_partition_and_is_committed")),
    (ConsumerGroup, "heartbeatInterval", "\"1s\"", "", Property("heartbeat.interval.ms")),
    (ConsumerGroup, "partitionWatchInterval", "\"10s\"", "watchPartitionChanges = true", Property("topic.metadata.refresh.interval.ms")),
    (ConsumerGroup, "watchPartitionChanges", "true", "", Property("topic.metadata.refresh.interval.ms")),
    (ConsumerGroup, "sessionTimeout", "\"45s\"", "", Property("session.timeout.ms")),
    (ConsumerGroup, "rebalanceTimeout", "\"60s\"", "", Property("max.poll.interval.ms")),
    (ConsumerGroup, "joinGroupBackoff", "\"1s\"", "", Behaviour("tests/config.rs::join_group_backoff_is_a_failed_members_first_restart_delay")),
    (ConsumerGroup, "startOffset", "-1", "", Property("auto.offset.reset")),
    (ConsumerGroup, "retentionTime", "\"24h\"", "", Refused("KIP-211")),
    (ConsumerGroup, "timeout", "\"2s\"", "", Behaviour("tests/commits.rs::a_commit_the_coordinator_does_not_answer_does_not_stop_dispatch")),
    (ConsumerGroup, "minBytes", "10", "", Property("fetch.min.bytes")),
    // A group's prefetch share caps it (maxBufferedBytes): below that it shows.
    (ConsumerGroup, "maxBytes", "65536", "", Property("max.partition.fetch.bytes")),
    (ConsumerGroup, "maxWait", "\"40ms\"", "", Property("fetch.wait.max.ms")),
    (ConsumerGroup, "readLagInterval", "\"5s\"", "", Behaviour("tests/observability.rs::metrics_move_with_produced_handled_retried_and_dead_lettered_messages_and_lag")),
    (ConsumerGroup, "commitInterval", "\"1s\"", "", Behaviour("tests/consumer_group.rs::close_with_the_coordinator_away_names_what_was_left_uncommitted")),
    (ConsumerGroup, "readBackoffMin", "\"200ms\"", "", Property("retry.backoff.ms")),
    (ConsumerGroup, "readBackoffMax", "\"2s\"", "", Property("retry.backoff.max.ms")),
    (Server, "debug", "true", "", Behaviour("tests/server.rs::debug_prints_each_handled_message_and_its_result")),
    (Server, "consumerName", "\"c\"", "", Behaviour("tests/server.rs::each_mode_receives_a_produced_message")),
    (Server, "consumerGroupName", "\"g2\"", "", Behaviour("tests/server.rs::each_mode_receives_a_produced_message")),
];

const SASL: &str = "saslMechanism = \"PLAIN\"\nsaslUserName = \"alice\"\nsaslPassword = \"secret\"";

/// The whole config with `lines` in `section`'s table, in place of what the
/// skeleton sets there for the same keys.
fn config_text(section: Section, lines: &str) -> String {
    let skeleton: [(Section, &str, &[&str]); 6] = [
        (Kafka, "[kafka]", &["brokers = [\"b:1\"]"]),
        (Producer, "[kafka.producers.p]", &["topic = \"t\""]),
        (
            GroupConsumer,
            "[kafka.consumers.c]",
            &["topic = \"t\"", "groupID = \"cg\""],
        ),
        (
            PartitionConsumer,
            "[kafka.consumers.pc]",
            &["topic = \"t\"", "partition = 0"],
        ),
        (
            ConsumerGroup,
            "[kafka.consumerGroups.g]",
            &["topic = \"t\"", "groupID = \"gg\""],
        ),
        (
            Server,
            "[kafkaConsumerServers.s]",
            &["consumerGroupName = \"g\""],
        ),
    ];
    let key_of = |line: &str| line.split(" = ").next().unwrap_or_default().to_string();
    let (lines, client) = match lines.strip_prefix("client.") {
        Some(client) if section == Kafka => ("", format!("[kafka.client]\n{client}\n")),
        _ => (lines, String::new()),
    };
    let set: Vec<String> = lines.lines().map(key_of).collect();
    let mut text = String::new();
    for (table, header, fixed) in skeleton {
        text.push_str(header);
        text.push('\n');
        for line in fixed {
            if table != section || !set.contains(&key_of(line)) {
                text.push_str(line);
                text.push('\n');
            }
        }
        if table == section {
            text.push_str(lines);
            text.push('\n');
        }
        if table == Kafka {
            text.push_str(&client);
        }
    }
    text
}

/// The properties of `section`'s client in `config`.
fn properties(config: &Config, section: Section) -> ekafka::config::Properties {
    match section {
        Kafka | Server => librdkafka::common(config),
        Producer => librdkafka::producer(config, "p", &config.producers["p"]),
        GroupConsumer => librdkafka::consumer(config, "c", &config.consumers["c"]),
        PartitionConsumer => librdkafka::consumer(config, "pc", &config.consumers["pc"]),
        ConsumerGroup => {
            librdkafka::consumer_group(config, "g", &config.consumer_groups["g"], None)
        }
    }
}

/// Everything a section's settings hold, to see that a key changed them.
fn parsed(text: &str, section: Section) -> Result<String, String> {
    let config = Config::from_toml_str(text, "kafka").map_err(|e| e.to_string())?;
    Ok(match section {
        Server => format!(
            "{:?}",
            ConsumerServerConfig::from_toml_str(text, "kafkaConsumerServers.s")
                .map_err(|e| e.to_string())?
        ),
        _ => format!("{config:?}"),
    })
}

#[test]
fn every_key_of_the_go_guide_is_honoured_or_refused_never_ignored() {
    let mut problems = Vec::new();
    for &(section, key, value, base, used) in GUIDE_KEYS {
        let base_text = config_text(section, base);
        // The base's lines, the key's own (a base may set it first) replaced.
        let key_line = format!("{key} = {value}");
        let with_key: Vec<&str> = base
            .lines()
            .filter(|line| !line.starts_with(&format!("{key} = ")))
            .chain([key_line.as_str()])
            .collect();
        let with_text = config_text(section, &with_key.join("\n"));
        let what = format!("{section:?} {key} = {value} ({used:?})");
        match used {
            Property(property) => {
                let (Ok(before), Ok(after)) = (
                    Config::from_toml_str(&base_text, "kafka"),
                    Config::from_toml_str(&with_text, "kafka"),
                ) else {
                    problems.push(format!("{what}: the config does not read"));
                    continue;
                };
                let (before, after) = (properties(&before, section), properties(&after, section));
                if before.get(property) == after.get(property) {
                    problems.push(format!(
                        "{what}: {property} stays {:?}",
                        before.get(property)
                    ));
                }
            }
            Behaviour(test) => {
                let (file, function) = test.split_once("::").expect("file::function");
                let source = std::fs::read_to_string(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file),
                )
                .unwrap_or_default();
                if !source.contains(&format!("fn {function}(")) {
                    problems.push(format!("{what}: no test {test}"));
                }
                match (parsed(&base_text, section), parsed(&with_text, section)) {
                    (Ok(before), Ok(after)) if before != after => {}
                    (Ok(_), Ok(_)) => problems.push(format!("{what}: the settings do not change")),
                    (before, after) => problems.push(format!("{what}: {before:?} / {after:?}")),
                }
            }
            Refused(reason) => {
                let refused = Ekafka::from_toml_str(&with_text, "kafka")
                    .err()
                    .map(|e| e.to_string());
                match refused {
                    Some(error)
                        if error.contains(reason)
                            && error.to_lowercase().contains(&key.to_lowercase()) => {}
                    other => problems.push(format!("{what}: not refused that way: {other:?}")),
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "keys of the Go guide read and not used:\n{}",
        problems.join("\n")
    );
}
