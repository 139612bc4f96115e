//! Config: every TOML block of the Go guide parses as written, bad input gives an
//! error naming the key path and value, and librdkafka gets the right properties.

use std::time::Duration;

use ekafka::config::{
    Compression, ConfigProblem, ConsumerAssignment, ConsumerServerConfig, GroupBalancer,
    RequiredAcks, SaslMechanism, StartOffset,
};
use ekafka::{Config, ConfigError, Ekafka};

fn load(text: &str) -> Config {
    Config::from_toml_str(text, "kafka").unwrap_or_else(|e| panic!("config should load: {e}"))
}

fn fail(text: &str) -> ConfigError {
    match Config::from_toml_str(text, "kafka") {
        Ok(config) => panic!("config should be rejected: {config:?}"),
        Err(e) => e,
    }
}

// ---- The Go guide's blocks, verbatim ----

const GUIDE_CONSUMER_GROUP: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092", "127.0.0.1:9093", "127.0.0.1:9094"]

[kafka.client]
timeout = "3s"

[kafka.consumerGroups.cg1]
JoinGroupBackoff = "1s"
groupID = "group-1"
topic = "my-topic"
"#;

const GUIDE_CONSUMER_GROUP_REFERENCE: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]
[kafka.consumerGroups.cg1]
groupID = "group-1"
topic = "my-topic"
heartbeatInterval = "3s"
partitionWatchInterval = "5s"
watchPartitionChanges = false
sessionTimeout = "30s"
rebalanceTimeout = "30s"
joinGroupBackoff = "5s"
startOffset = "-2"
retentionTime = "-1"
timeout = "5s"
minBytes = 1
maxBytes = 1048576
maxWait = "10s"
readLagInterval = "60s"
commitInterval = "0"
readBackoffMin = "100ms"
readBackoffMax = "1s"
"#;

const GUIDE_CONSUMER_SERVER: &str = r#"
[kafka]
debug=true
brokers=["localhost:9094"]

[kafka.client]
timeout="3s"

[kafka.consumers.c1]
topic="sre-infra-test"
groupID="group-1"
# 指定 Consumer Group 未曾提交过 offset 时从何处开始消费
startOffset = -1
# 默认为同步提交，可以配置自动批量提交间隔来提高性能
commitInterval = "1s"

[kafka.consumerGroups.cg1]
topic="sre-infra-test"
groupID="group-1"
startOffset = -1
commitInterval = "1s"

[kafkaConsumerServers.s1]
debug=true
# 使用 ekafka 中注册的哪一个 Consumer，对应 `kafka.consumers.[name]` 配置项
consumerName="c1"
# 也可以配合 ConsumerGroup 使用
consumerGroupName="cg1"
"#;

const GUIDE_PRODUCER: &str = r#"
[kafka]
	brokers=["localhost:9091","localhost:9092","localhost:9093"]
	[kafka.client]
		timeout="3s"
	[kafka.producers.p1]        # 定义了名字为 p1 的 producer
		topic="test_topic"        # 指定生产消息的 topic
"#;

const GUIDE_PRODUCER_DEBUG: &str = r#"
[kafka]
	debug=true
	brokers=["localhost:9091","localhost:9092","localhost:9093"]
	[kafka.client]
		timeout="3s"
	[kafka.producers.p1]        # 定义了名字为 p1 的 producer
		topic="sre-infra-test"  # 指定生产消息的 topic
"#;

const GUIDE_COMPRESSION: &str = r#"
[kafka]
	brokers=["localhost:9091","localhost:9092","localhost:9093"]
	[kafka.client]
		timeout="3s"
	[kafka.producers.p1]        # 定义了名字为 p1 的 producer
		topic="test_topic"        # 指定生产消息的 topic
		compression=1 #指定压缩类型
"#;

const GUIDE_SASL: &str = r#"
[kafka]
	debug=true
	brokers=["localhost:9091","localhost:9092","localhost:9093"]
	saslMechanism="PLAIN" #SASL Authentication Types
	saslUserName="username" #用户名
	saslPassword="password" #密码
	[kafka.client]
        timeout="3s"
	[kafka.producers.p1]
		topic="sre-infra-test"
	[kafka.consumers.c1]
		topic="sre-infra-test"
		groupID="group-1"
"#;

#[test]
fn consumer_group_block_with_mixed_key_case() {
    let config = load(GUIDE_CONSUMER_GROUP);
    assert_eq!(config.brokers.len(), 3);
    assert_eq!(config.client.timeout, Duration::from_secs(3));
    let cg1 = &config.consumer_groups["cg1"];
    assert_eq!(cg1.group_id, "group-1");
    assert_eq!(cg1.topics, ["my-topic"]);
    assert_eq!(cg1.group.join_group_backoff, Some(Duration::from_secs(1)));
    // Untouched keys keep the documented defaults.
    assert_eq!(cg1.group.session_timeout, Duration::from_secs(30));
    assert_eq!(cg1.timeout, Duration::from_secs(5));
    assert_eq!(cg1.fetch.start_offset, StartOffset::First);
    assert_eq!(cg1.group.retention_time, None);
}

#[test]
fn consumer_group_reference_block_sets_every_key() {
    let config = load(GUIDE_CONSUMER_GROUP_REFERENCE);
    let cg1 = &config.consumer_groups["cg1"];
    assert_eq!(cg1.group.heartbeat_interval, Duration::from_secs(3));
    assert_eq!(cg1.group.partition_watch_interval, Duration::from_secs(5));
    assert!(!cg1.group.watch_partition_changes);
    assert_eq!(cg1.group.rebalance_timeout, Duration::from_secs(30));
    assert_eq!(cg1.group.join_group_backoff, Some(Duration::from_secs(5)));
    assert_eq!(cg1.fetch.start_offset, StartOffset::First);
    assert_eq!(
        cg1.group.retention_time, None,
        "retentionTime = \"-1\" means left to the broker"
    );
    assert_eq!(cg1.fetch.min_bytes, 1);
    assert_eq!(cg1.fetch.max_bytes, 1_048_576);
    assert_eq!(cg1.fetch.max_wait, Duration::from_secs(10));
    assert_eq!(cg1.fetch.read_lag_interval, Some(Duration::from_secs(60)));
    assert_eq!(cg1.fetch.commit_interval, Duration::ZERO);
    assert_eq!(cg1.fetch.read_backoff_min, Duration::from_millis(100));
    assert_eq!(cg1.fetch.read_backoff_max, Duration::from_secs(1));
}

#[test]
fn consumer_server_block_with_numeric_start_offset() {
    let config = load(GUIDE_CONSUMER_SERVER);
    assert!(config.debug);
    let c1 = &config.consumers["c1"];
    assert_eq!(c1.topic, "sre-infra-test");
    assert_eq!(c1.assignment, ConsumerAssignment::Group("group-1".into()));
    assert_eq!(c1.fetch.start_offset, StartOffset::Last);
    assert_eq!(c1.fetch.commit_interval, Duration::from_secs(1));
    // Unset (and only "-1" is accepted): the broker's retention applies.
    assert_eq!(c1.group.retention_time, None);
    assert_eq!(
        config.consumer_groups["cg1"].fetch.start_offset,
        StartOffset::Last
    );

    let server =
        ConsumerServerConfig::from_toml_str(GUIDE_CONSUMER_SERVER, "kafkaConsumerServers.s1")
            .unwrap();
    assert!(server.debug);
    assert_eq!(server.consumer_name.as_deref(), Some("c1"));
    assert_eq!(server.consumer_group_name.as_deref(), Some("cg1"));
}

#[test]
fn producer_blocks_with_documented_defaults() {
    for block in [GUIDE_PRODUCER, GUIDE_PRODUCER_DEBUG] {
        let config = load(block);
        let p1 = &config.producers["p1"];
        assert!(p1.topic.is_some());
        assert_eq!(p1.balancer, "roundRobin");
        assert_eq!(p1.max_attempts, 10);
        assert_eq!(p1.batch_size, 10_000);
        assert_eq!(p1.batch_bytes, 1024 * 1024);
        assert_eq!(p1.batch_timeout, Duration::from_millis(5));
        assert_eq!(p1.read_timeout, Duration::from_secs(10));
        assert_eq!(p1.write_timeout, Duration::from_secs(10));
        assert_eq!(
            p1.required_acks,
            RequiredAcks::All,
            "acks=all, not the Go default of 0"
        );
        assert!(!p1.async_writes);
        assert_eq!(p1.compression, Compression::None);
    }
    assert!(load(GUIDE_PRODUCER_DEBUG).debug);
    assert!(!load(GUIDE_PRODUCER).debug);
}

#[test]
fn compression_block() {
    assert_eq!(
        load(GUIDE_COMPRESSION).producers["p1"].compression,
        Compression::Gzip
    );
}

#[test]
fn sasl_block() {
    let config = load(GUIDE_SASL);
    let sasl = config.sasl.as_ref().expect("sasl configured");
    assert_eq!(sasl.mechanism, SaslMechanism::Plain);
    assert_eq!(sasl.username, "username");
    assert_eq!(sasl.password.expose(), "password");
    assert!(config.consumers.contains_key("c1"));
}

#[test]
fn snake_case_keys_work_too() {
    let config = load(
        r#"
        [kafka]
        brokers = ["b:9092"]
        sasl_mechanism = "SCRAM-SHA-512"
        sasl_user_name = "u"
        sasl_password = "p"
        enable_access_interceptor = true
        [kafka.consumer_groups.cg1]
        group_id = "g"
        topic = "t"
        join_group_backoff = "1m30s"
        start_offset = "-1"
        [kafka.producers.p1]
        batch_timeout = "100ms"
        required_acks = 1
        max_attempts = 3
        "#,
    );
    assert_eq!(config.sasl.unwrap().mechanism, SaslMechanism::ScramSha512);
    assert!(config.interceptors.access);
    let cg1 = &config.consumer_groups["cg1"];
    assert_eq!(cg1.group.join_group_backoff, Some(Duration::from_secs(90)));
    assert_eq!(cg1.fetch.start_offset, StartOffset::Last);
    let p1 = &config.producers["p1"];
    assert_eq!(p1.batch_timeout, Duration::from_millis(100));
    assert_eq!(p1.required_acks, RequiredAcks::Leader);
    assert_eq!(p1.max_attempts, 3);
}

#[test]
fn every_compression_codec_and_ack_value() {
    for (value, codec) in [
        ("0", Compression::None),
        ("1", Compression::Gzip),
        ("2", Compression::Snappy),
        ("3", Compression::Lz4),
        ("4", Compression::Zstd),
        ("\"zstd\"", Compression::Zstd),
    ] {
        let config = load(&format!(
            "[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p]\ncompression={value}\n"
        ));
        assert_eq!(
            config.producers["p"].compression, codec,
            "compression={value}"
        );
    }
    for (value, acks) in [
        ("0", RequiredAcks::None),
        ("1", RequiredAcks::Leader),
        ("-1", RequiredAcks::All),
        ("\"all\"", RequiredAcks::All),
    ] {
        let config = load(&format!(
            "[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p]\nrequiredAcks={value}\n"
        ));
        assert_eq!(
            config.producers["p"].required_acks, acks,
            "requiredAcks={value}"
        );
    }
}

#[test]
fn group_balancers_and_several_topics() {
    let config = load(
        "[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.g]\ngroupID=\"g\"\ntopics=[\"a\",\"b\"]\ngroupBalancers=[\"roundRobin\"]\n",
    );
    let g = &config.consumer_groups["g"];
    assert_eq!(g.topics, ["a", "b"]);
    assert_eq!(g.group_balancers, [GroupBalancer::RoundRobin]);
}

#[test]
fn loads_from_a_file_and_from_a_parsed_table() {
    let path = std::env::temp_dir().join(format!(
        "{}.toml",
        ekafka::testing::unique_name("ekafka-config")
    ));
    std::fs::write(&path, GUIDE_PRODUCER).unwrap();
    let from_file = Config::from_file(&path, "kafka").unwrap();
    std::fs::remove_file(&path).unwrap();
    let table: toml::Table = GUIDE_PRODUCER.parse().unwrap();
    assert_eq!(from_file, Config::from_table(&table, "kafka").unwrap());

    let missing = Config::from_file("/nonexistent/ekafka.toml", "kafka").unwrap_err();
    assert_eq!(missing.path(), "/nonexistent/ekafka.toml");
    assert!(matches!(
        missing.problem(),
        ConfigProblem::Unreadable { .. }
    ));
}

#[test]
fn nested_section_paths() {
    let text = "[app.kafka]\nbrokers=[\"b:1\"]\n";
    assert_eq!(
        Config::from_toml_str(text, "app.kafka").unwrap().section,
        "app.kafka"
    );
}

// ---- Bad input: the error names the key path and the value ----

fn assert_error(error: &ConfigError, path: &str, mentions: &[&str]) {
    assert_eq!(error.path(), path, "error was: {error}");
    let text = error.to_string();
    for needle in mentions {
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
    }
}

#[test]
fn malformed_toml() {
    let e = fail("[kafka\nbrokers = [");
    assert!(
        matches!(e.problem(), ConfigProblem::Unreadable { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("line"),
        "the parser's position is kept: {e}"
    );
}

#[test]
fn wrong_types() {
    let e = fail("[kafka]\nbrokers = \"localhost:9092\"\n");
    assert_error(
        &e,
        "kafka.brokers",
        &["list of strings", "\"localhost:9092\""],
    );
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nbatchSize = \"many\"\n");
    assert_error(&e, "kafka.producers.p1.batchSize", &["integer", "\"many\""]);
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nbatchTimeout = 5\n");
    assert_error(&e, "kafka.producers.p1.batchTimeout", &["duration", "5"]);
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\ndebug = \"yes\"\n");
    assert_error(&e, "kafka.debug", &["true or false", "\"yes\""]);
}

#[test]
fn bad_durations() {
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.client]\ntimeout = \"3 seconds\"\n");
    assert_error(&e, "kafka.client.timeout", &["\"3 seconds\"", "duration"]);
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nwriteTimeout = \"-5s\"\n");
    assert_error(
        &e,
        "kafka.producers.p1.writeTimeout",
        &["\"-5s\"", "not negative"],
    );
}

#[test]
fn unknown_keys_suggest_the_closest() {
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nbatchTimout = \"1s\"\n");
    assert_error(
        &e,
        "kafka.producers.p1.batchTimout",
        &["unknown key", "batchTimeout"],
    );
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\nsaslPasword = \"x\"\n");
    assert_error(&e, "kafka.saslPasword", &["saslPassword"]);
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.cg1]\ngroupID=\"g\"\ntopic=\"t\"\ncompletelyDifferent = 1\n");
    assert_error(
        &e,
        "kafka.consumerGroups.cg1.completelyDifferent",
        &["unknown key"],
    );
    assert_eq!(e.problem(), &ConfigProblem::UnknownKey { suggestion: None });
}

#[test]
fn a_misspelled_required_key_is_named_with_the_key_it_should_be() {
    let e = fail("[kafka]\nbrokres = [\"b:1\"]\n");
    assert_error(&e, "kafka.brokres", &["unknown key", "brokers"]);
    assert_eq!(
        e.problem(),
        &ConfigProblem::UnknownKey {
            suggestion: Some("brokers".into())
        }
    );
    let e = fail(
        "[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.cg1]\ngroupID=\"g\"\ntopci=\"t\"\n",
    );
    assert_error(&e, "kafka.consumerGroups.cg1.topci", &["topic"]);
    // Absent without a look-alike, it is reported missing, as before.
    let e = fail("[kafka]\nproducers = {}\n");
    assert_error(&e, "kafka.brokers", &["missing"]);
    assert_eq!(e.problem(), &ConfigProblem::Missing);
}

#[test]
fn invalid_enum_values() {
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\ncompression = 7\n");
    assert_error(&e, "kafka.producers.p1.compression", &["7", "4 (zstd)"]);
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.cg1]\ngroupID=\"g\"\ntopic=\"t\"\nstartOffset = 5\n");
    assert_error(
        &e,
        "kafka.consumerGroups.cg1.startOffset",
        &["5", "-2", "-1"],
    );
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\nsaslMechanism = \"FOO\"\nsaslUserName=\"u\"\n");
    assert_error(&e, "kafka.saslMechanism", &["\"FOO\"", "SCRAM-SHA-256"]);
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nrequiredAcks = 2\n");
    assert_error(&e, "kafka.producers.p1.requiredAcks", &["2", "-1"]);
}

#[test]
fn missing_section_and_empty_brokers() {
    let e = fail("[other]\nx = 1\n");
    assert_error(&e, "kafka", &["missing"]);
    let e = fail("[kafka]\nbrokers = []\n");
    assert_error(&e, "kafka.brokers", &["[]", "host:port"]);
    let e = fail("[kafka]\ndebug = true\n");
    assert_error(&e, "kafka.brokers", &["missing"]);
}

#[test]
fn partition_and_group_id_exclude_each_other() {
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumers.c1]\ntopic=\"t\"\npartition=2\ngroupID=\"g\"\n");
    assert_error(
        &e,
        "kafka.consumers.c1.partition",
        &["kafka.consumers.c1.groupID"],
    );
}

#[test]
fn the_same_key_twice_in_two_spellings() {
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.cg1]\ngroupID=\"g\"\ngroup_id=\"h\"\ntopic=\"t\"\n");
    assert!(
        matches!(e.problem(), ConfigProblem::Duplicate { .. }),
        "{e}"
    );
}

#[test]
fn batch_timeout_must_fit_in_write_timeout() {
    let e = fail("[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nwriteTimeout=\"3ms\"\n");
    assert_error(
        &e,
        "kafka.producers.p1.writeTimeout",
        &["\"3ms\"", "batchTimeout"],
    );
}

#[test]
fn unknown_balancer_is_named_at_build() {
    let e = Ekafka::from_toml_str(
        "[kafka]\nbrokers=[\"b:1\"]\n[kafka.producers.p1]\nbalancer=\"sticky\"\n",
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("kafka.producers.p1.balancer") && text.contains("\"sticky\""),
        "{text}"
    );
}

#[test]
fn topic_names_kafka_would_refuse_are_refused_naming_the_key() {
    for (table, key, name) in [
        ("[kafka.producers.p1]", "topic", "bad topic!"),
        ("[kafka.consumers.c1]", "topic", "orders/eu"),
        ("[kafka.consumerGroups.g1]\ngroupID = \"g\"", "topic", ".."),
        (
            "[kafka.consumerGroups.g1]\ngroupID = \"g\"",
            "topics",
            "ok\", \"ünicode",
        ),
    ] {
        let list = if key == "topics" {
            format!("topics = [\"{name}\"]")
        } else {
            format!("topic = {name:?}")
        };
        let text = format!("[kafka]\nbrokers=[\"b:1\"]\n{table}\n{list}\n");
        let error = Ekafka::from_toml_str(&text, "kafka")
            .unwrap_err()
            .to_string();
        let section = table.lines().next().unwrap().trim_matches(['[', ']']);
        assert!(
            error.contains(&format!("{section}.{key}")) && error.contains("valid topic name"),
            "{text}: {error}"
        );
    }
}

// ---- Secrets ----

#[test]
fn passwords_never_appear_in_debug_or_display() {
    let secret = "s3cr3t-Pa55word";
    let text = GUIDE_SASL.replace(
        "saslPassword=\"password\"",
        &format!("saslPassword={secret:?}"),
    );
    let config = load(&text);
    assert_eq!(config.sasl.as_ref().unwrap().password.expose(), secret);
    let kafka = Ekafka::builder(config.clone()).build().unwrap();
    let properties = kafka.producer_properties("p1").unwrap();
    assert_eq!(
        properties.get("sasl.password"),
        Some(secret),
        "the client still gets it"
    );
    for shown in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{}", config.sasl.as_ref().unwrap().password),
        format!("{kafka:?}"),
        format!("{properties:?}"),
    ] {
        assert!(!shown.contains(secret), "password leaked into: {shown}");
    }
    // A password in a raw librdkafka table is hidden too.
    let raw = load(
        "[kafka]\nbrokers=[\"b:1\"]\n[kafka.librdkafka]\n\"ssl.key.password\" = \"k3y-pa55\"\n",
    );
    assert!(!format!("{raw:?}").contains("k3y-pa55"));
}

// ---- Mapping to librdkafka ----

fn properties(producer_keys: &str) -> ekafka::config::Properties {
    Ekafka::from_toml_str(
        &format!("[kafka]\nbrokers=[\"a:1\",\"b:2\"]\n[kafka.producers.p1]\n{producer_keys}\n"),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap()
    .producer_properties("p1")
    .unwrap()
}

#[test]
fn producer_keys_become_librdkafka_properties() {
    let props = properties(
        "batchTimeout=\"250ms\"\nbatchSize=500\nbatchBytes=2097152\nrequiredAcks=1\ncompression=3\nmaxAttempts=4\nwriteTimeout=\"20s\"\nreadTimeout=\"7s\"",
    );
    assert_eq!(props.get("bootstrap.servers"), Some("a:1,b:2"));
    assert_eq!(props.get("linger.ms"), Some("250"));
    assert_eq!(props.get("batch.num.messages"), Some("500"));
    assert_eq!(props.get("batch.size"), Some("2097152"));
    assert_eq!(props.get("acks"), Some("1"));
    assert_eq!(props.get("compression.codec"), Some("lz4"));
    assert_eq!(props.get("message.send.max.retries"), Some("3"));
    assert_eq!(props.get("message.timeout.ms"), Some("20000"));
    assert_eq!(props.get("request.timeout.ms"), Some("7000"));
    assert_eq!(
        props.get("enable.idempotence"),
        Some("false"),
        "idempotence needs acks=all"
    );
    assert_eq!(props.get("client.id"), Some("ekafka-producer-p1"));
}

#[test]
fn producer_defaults_in_librdkafka_terms() {
    let props = properties("");
    assert_eq!(props.get("acks"), Some("all"));
    assert_eq!(props.get("enable.idempotence"), Some("true"));
    assert_eq!(props.get("linger.ms"), Some("5"));
    assert_eq!(props.get("batch.num.messages"), Some("10000"));
    assert_eq!(props.get("batch.size"), Some("1048576"));
    assert_eq!(props.get("message.send.max.retries"), Some("9"));
    assert_eq!(props.get("message.timeout.ms"), Some("10000"));
    assert_eq!(props.get("request.timeout.ms"), Some("10000"));
    assert_eq!(props.get("compression.codec"), Some("none"));
    assert_eq!(
        props.get("sticky.partitioning.linger.ms"),
        Some("0"),
        "roundRobin runs per message"
    );
    assert_eq!(
        props.get("socket.connection.setup.timeout.ms"),
        Some("10000")
    );
    // Go ekafka's hash (kafka-go's FNV-1a) and the Java client's murmur2.
    assert_eq!(
        properties("balancer=\"hash\"").get("partitioner"),
        Some("fnv1a_random")
    );
    assert_eq!(
        properties("balancer=\"murmur2\"").get("partitioner"),
        Some("murmur2_random")
    );
}

#[test]
fn sasl_keys_map_to_security_properties() {
    let config = load(&GUIDE_SASL.replace("PLAIN", "SCRAM-SHA-256"));
    let props = ekafka::config::librdkafka::common(&config);
    assert_eq!(props.get("security.protocol"), Some("SASL_PLAINTEXT"));
    assert_eq!(props.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(props.get("sasl.username"), Some("username"));
    assert_eq!(props.get("sasl.password"), Some("password"));
    assert_eq!(
        props.get("socket.connection.setup.timeout.ms"),
        Some("3000")
    );
}

#[test]
fn raw_tables_override_what_ekafka_derives() {
    let config = load(
        "[kafka]\nbrokers=[\"b:1\"]\n[kafka.librdkafka]\n\"linger.ms\" = 7\n\"statistics.interval.ms\" = 1000\n\
         [kafka.producers.p1]\nlibrdkafka = { \"linger.ms\" = \"2\", \"enable.idempotence\" = false }\n",
    );
    let props = ekafka::config::librdkafka::producer(&config, "p1", &config.producers["p1"]);
    assert_eq!(
        props.get("linger.ms"),
        Some("2"),
        "the producer's own table wins"
    );
    assert_eq!(props.get("statistics.interval.ms"), Some("1000"));
    assert_eq!(props.get("enable.idempotence"), Some("false"));
}

#[test]
fn consumer_group_keys_become_librdkafka_properties() {
    let config = load(GUIDE_CONSUMER_GROUP_REFERENCE);
    let props = ekafka::config::librdkafka::consumer_group(
        &config,
        "cg1",
        &config.consumer_groups["cg1"],
        None,
    );
    assert_eq!(props.get("group.id"), Some("group-1"));
    assert_eq!(props.get("auto.offset.reset"), Some("earliest"));
    assert_eq!(props.get("heartbeat.interval.ms"), Some("3000"));
    assert_eq!(props.get("session.timeout.ms"), Some("30000"));
    assert_eq!(props.get("max.poll.interval.ms"), Some("30000"));
    assert_eq!(props.get("fetch.min.bytes"), Some("1"));
    // maxBytes (1 MiB), capped at maxBufferedBytes / 64 (16 MiB / 64).
    assert_eq!(props.get("max.partition.fetch.bytes"), Some("262144"));
    // maxWait (10s) capped at 50ms for groups: a long poll holds up the
    // broker's other partitions.
    assert_eq!(props.get("fetch.wait.max.ms"), Some("50"));
    // Prefetch sized from maxBufferedBytes and maxBuffered.
    assert_eq!(props.get("queued.max.messages.kbytes"), Some("256"));
    assert_eq!(props.get("queued.min.messages"), Some("10000"));
    assert_eq!(props.get("fetch.max.bytes"), Some("4194304"));
    assert_eq!(props.get("enable.auto.commit"), Some("false"));
    assert_eq!(
        props.get("partition.assignment.strategy"),
        Some("range,roundrobin")
    );
    assert_eq!(props.get("retry.backoff.ms"), Some("100"));
    assert_eq!(props.get("retry.backoff.max.ms"), Some("1000"));
}

#[test]
fn consumer_server_retry_and_dead_letter_keys() {
    let text = "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nretries = 5\nretryBackoff = \"50ms\"\n\
                retryBackoffMax = \"2s\"\ndeadLetterProducer = \"dlq\"\ndeadLetterTopic = \"orders.dlq\"\n";
    let server = ConsumerServerConfig::from_toml_str(text, "kafkaConsumerServers.s1").unwrap();
    assert_eq!(server.retry.retries, 5);
    assert_eq!(server.retry.backoff, Duration::from_millis(50));
    assert_eq!(server.retry.backoff_max, Duration::from_secs(2));
    let dead_letter = server.dead_letter.unwrap();
    assert_eq!(
        (dead_letter.producer.as_str(), dead_letter.topic.as_deref()),
        ("dlq", Some("orders.dlq"))
    );

    let defaults = ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\nconsumerName = \"c1\"\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap();
    assert_eq!(defaults.retry.retries, 3, "3 retries by default, like Go");
    assert!(defaults.dead_letter.is_none());

    let e = ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\nconsumerName = \"c1\"\ndeadLetterTopic = \"x\"\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap_err();
    assert_eq!(e.path(), "kafkaConsumerServers.s1.deadLetterProducer");
    let e = ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap_err();
    assert_eq!(e.path(), "kafkaConsumerServers.s1.consumerGroupName");
}

#[test]
fn restart_keys_for_producers_groups_and_servers() {
    let config = load(
        "[kafka]\nbrokers = [\"b:9092\"]\n[kafka.producers.p1]\nmaxRestarts = 2\nrestartWindow = \"30s\"\n\
         [kafka.consumerGroups.cg1]\ngroupID = \"g\"\ntopic = \"t\"\nrestartBackoff = \"1s\"\nrestartBackoffMax = \"20s\"\n",
    );
    let base = ekafka::RestartPolicy::default();
    let producer = config.producers["p1"].restart.apply(&base);
    assert_eq!(
        (producer.max_restarts, producer.window, producer.backoff_min),
        (2, Duration::from_secs(30), base.backoff_min),
        "unset keys keep the component's policy"
    );
    let group = config.consumer_groups["cg1"].restart.apply(&base);
    assert_eq!(
        (group.backoff_min, group.backoff_max, group.max_restarts),
        (
            Duration::from_secs(1),
            Duration::from_secs(20),
            base.max_restarts
        )
    );
    let server = ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nmax_restarts = 0\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap();
    assert_eq!(
        server.restart.apply(&base).max_restarts,
        0,
        "0: never restart"
    );
}

#[test]
fn bad_restart_keys_name_the_key_and_value() {
    let server = |keys: &str| {
        ConsumerServerConfig::from_toml_str(
            &format!("[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n{keys}\n"),
            "kafkaConsumerServers.s1",
        )
        .unwrap_err()
    };
    assert_error(
        &server("maxRestarts = -1"),
        "kafkaConsumerServers.s1.maxRestarts",
        &["-1", "0 to 10000"],
    );
    assert_error(
        &server("restartWindow = \"0s\""),
        "kafkaConsumerServers.s1.restartWindow",
        &["\"0s\"", "above zero"],
    );
    assert_error(
        &server("restartBackoff = \"5s\"\nrestartBackoffMax = \"1s\""),
        "kafkaConsumerServers.s1.restartBackoff",
        &["\"5s\"", "restartBackoffMax"],
    );
    assert_error(
        &fail("[kafka]\nbrokers = [\"b:9092\"]\n[kafka.producers.p1]\nrestartWindow = \"soon\"\n"),
        "kafka.producers.p1.restartWindow",
        &["\"soon\"", "duration"],
    );
}

#[test]
fn the_consumer_group_protocol_leaves_timings_and_assignment_to_the_broker() {
    let group = "[kafka]\nbrokers = [\"b:1\"]\n[kafka.consumerGroups.cg1]\ngroupID = \"g\"\ntopic = \"t\"\n";
    let config = load(&format!("{group}groupProtocol = \"consumer\"\n"));
    let props = ekafka::config::librdkafka::consumer_group(
        &config,
        "cg1",
        &config.consumer_groups["cg1"],
        None,
    );
    assert_eq!(props.get("group.protocol"), Some("consumer"));
    for classic_only in [
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "partition.assignment.strategy",
    ] {
        assert_eq!(props.get(classic_only), None, "{classic_only}");
    }
    let classic = load(group);
    let props = ekafka::config::librdkafka::consumer_group(
        &classic,
        "cg1",
        &classic.consumer_groups["cg1"],
        None,
    );
    assert_eq!(
        props.get("group.protocol"),
        None,
        "classic stays the default"
    );

    for (key, value) in [
        ("sessionTimeout", "\"6s\""),
        ("heartbeatInterval", "\"1s\""),
        ("groupBalancers", "[\"range\"]"),
    ] {
        let err = fail(&format!(
            "{group}groupProtocol = \"consumer\"\n{key} = {value}\n"
        ));
        assert_eq!(err.path(), format!("kafka.consumerGroups.cg1.{key}"));
        assert!(
            matches!(err.problem(), ConfigProblem::Conflict { other, .. } if other == "kafka.consumerGroups.cg1.groupProtocol"),
            "{err}"
        );
        assert!(err.to_string().contains("KIP-848"), "{err}");
    }
    let err = fail(&format!("{group}groupProtocol = \"cooperative\"\n"));
    assert_eq!(err.path(), "kafka.consumerGroups.cg1.groupProtocol");
    assert!(
        err.to_string().contains("\"classic\" or \"consumer\""),
        "{err}"
    );
}

#[test]
fn tls_keys_map_to_ssl_properties_and_name_missing_files() {
    let dir = std::env::temp_dir().join(ekafka::testing::unique_name("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, "PEM").unwrap();
        path.display().to_string()
    };
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let text = format!(
        "[kafka]\nbrokers = [\"b:1\"]\nsaslMechanism = \"PLAIN\"\nsaslUserName = \"u\"\nsaslPassword = \"p\"\n\
         [kafka.tls]\ncaFile = {ca:?}\ncertFile = {cert:?}\nkeyFile = {key:?}\nkeyPassword = \"k3y-pa55\"\n"
    );
    let config = load(&text);
    let props = ekafka::config::librdkafka::common(&config);
    assert_eq!(props.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(props.get("ssl.ca.location"), Some(ca.as_str()));
    assert_eq!(props.get("ssl.certificate.location"), Some(cert.as_str()));
    assert_eq!(props.get("ssl.key.location"), Some(key.as_str()));
    assert_eq!(props.get("ssl.key.password"), Some("k3y-pa55"));
    assert_eq!(
        props.get("ssl.endpoint.identification.algorithm"),
        Some("https")
    );
    assert!(!format!("{config:?} {props:?}").contains("k3y-pa55"));

    let only_tls = load("[kafka]\nbrokers = [\"b:1\"]\n[kafka.tls]\nverifyHostname = false\n");
    let props = ekafka::config::librdkafka::common(&only_tls);
    assert_eq!(props.get("security.protocol"), Some("SSL"));
    assert_eq!(
        props.get("ssl.endpoint.identification.algorithm"),
        Some("none")
    );
    let off =
        load("[kafka]\nbrokers = [\"b:1\"]\n[kafka.tls]\nenabled = false\ncaFile = \"/nowhere\"\n");
    assert!(off.tls.is_none());

    let err = fail("[kafka]\nbrokers = [\"b:1\"]\n[kafka.tls]\ncaFile = \"/nowhere/ca.pem\"\n");
    assert_eq!(err.path(), "kafka.tls.caFile");
    assert!(err.to_string().contains("/nowhere/ca.pem"), "{err}");
    let err = fail(&format!(
        "[kafka]\nbrokers = [\"b:1\"]\n[kafka.tls]\ncertFile = {cert:?}\n"
    ));
    assert_eq!(err.path(), "kafka.tls.keyFile");
    let err = fail("[kafka]\nbrokers = [\"b:1\"]\n[kafka.tls]\ncaFlie = \"x\"\n");
    assert!(err.to_string().contains("caFile"), "did you mean: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn max_buffered_bytes_sizes_librdkafka_prefetch_and_is_checked() {
    let toml =
        "[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.cg1]\ngroupID = \"g\"\ntopic = \"t\"\n\
                maxBufferedBytes = 67108864\n";
    let config = load(toml);
    let group = &config.consumer_groups["cg1"];
    assert_eq!(group.flow.max_buffered_bytes, 64 << 20);
    let props = ekafka::config::librdkafka::consumer_group(&config, "cg1", group, None);
    assert_eq!(props.get("queued.max.messages.kbytes"), Some("1024"));
    assert_eq!(props.get("max.partition.fetch.bytes"), Some("1048576"));
    assert_eq!(props.get("fetch.max.bytes"), Some("16777216"));
    // maxWait left out: librdkafka's 500ms, capped at 50ms for groups.
    assert_eq!(group.fetch.max_wait, std::time::Duration::from_millis(500));
    assert_eq!(props.get("fetch.wait.max.ms"), Some("50"));
    // What the member is created with once it knows its 16 partitions: half
    // the bound queued over them, each fetch capped by maxBytes.
    let props = ekafka::config::librdkafka::consumer_group(&config, "cg1", group, Some(16));
    assert_eq!(props.get("queued.max.messages.kbytes"), Some("2048"));
    assert_eq!(props.get("max.partition.fetch.bytes"), Some("1048576"));

    let error = ekafka::Config::from_toml_str(&toml.replace("67108864", "100"), "kafka")
        .expect_err("below 1 KiB");
    let text = error.to_string();
    assert!(
        text.contains("kafka.consumerGroups.cg1.maxBufferedBytes") && text.contains("100"),
        "{text}"
    );
}

#[test]
fn instance_id_makes_a_static_member_and_is_checked_against_kafkas_rule() {
    let group = |instance: &str| {
        format!(
            "[kafka]\nbrokers = [\"b:9092\"]\n[kafka.consumerGroups.cg1]\ngroupID = \"g\"\n\
             topic = \"t\"\ninstanceID = {instance:?}\n"
        )
    };
    let config = load(&group("orders-7f9c-0"));
    let props = ekafka::config::librdkafka::consumer_group(
        &config,
        "cg1",
        &config.consumer_groups["cg1"],
        None,
    );
    assert_eq!(props.get("group.instance.id"), Some("orders-7f9c-0"));
    let without = load(
        "[kafka]\nbrokers = [\"b:9092\"]\n[kafka.consumerGroups.cg1]\ngroupID = \"g\"\ntopic = \"t\"\n",
    );
    let props = ekafka::config::librdkafka::consumer_group(
        &without,
        "cg1",
        &without.consumer_groups["cg1"],
        None,
    );
    assert_eq!(props.get("group.instance.id"), None, "dynamic by default");

    for bad in ["pod 1", "pod/1", &"x".repeat(250)] {
        let error = fail(&group(bad));
        assert_eq!(
            error.path(),
            "kafka.consumerGroups.cg1.instanceID",
            "{error}"
        );
        assert!(error.to_string().contains("group.instance.id"), "{error}");
    }
}

#[test]
fn group_only_keys_on_a_partition_consumer_are_refused_saying_why() {
    for key in [
        "heartbeatInterval = \"2s\"",
        "sessionTimeout = \"45s\"",
        "commitInterval = \"1s\"",
        "joinGroupBackoff = \"1s\"",
        "watchPartitionChanges = true",
    ] {
        let text = format!(
            "[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumers.c1]\ntopic = \"t\"\npartition = 2\n{key}\n"
        );
        let error = Ekafka::from_toml_str(&text, "kafka")
            .unwrap_err()
            .to_string();
        let name = key.split(' ').next().unwrap();
        assert!(
            error.contains(&format!("kafka.consumers.c1.{name}"))
                && error.contains("without a groupID")
                && error.contains("partition 2"),
            "{key}: {error}"
        );
    }
}

#[test]
fn group_keys_left_at_their_default_on_a_partition_consumer_change_nothing_and_pass() {
    let text = "[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumers.c1]\ntopic = \"t\"\npartition = 2\n\
                commitInterval = \"0\"\nheartbeatInterval = \"3s\"\n";
    assert!(Ekafka::from_toml_str(text, "kafka").is_ok());
}

#[test]
fn retention_time_other_than_the_brokers_is_refused_saying_why() {
    let text = "[kafka]\nbrokers=[\"b:1\"]\n[kafka.consumerGroups.g]\ngroupID = \"g\"\ntopic = \"t\"\nretentionTime = \"24h\"\n";
    let error = Ekafka::from_toml_str(text, "kafka")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("kafka.consumerGroups.g.retentionTime") && error.contains("KIP-211"),
        "{error}"
    );
}

#[test]
fn join_group_backoff_is_a_failed_members_first_restart_delay() {
    let config = load(GUIDE_CONSUMER_GROUP);
    let group = &config.consumer_groups["cg1"];
    let policy = group
        .group
        .restart_settings(&group.restart)
        .apply(&ekafka::RestartPolicy::default());
    assert_eq!(policy.backoff_min, Duration::from_secs(1));
    let both = GUIDE_CONSUMER_GROUP.replace(
        "JoinGroupBackoff = \"1s\"",
        "JoinGroupBackoff = \"1s\"\nrestartBackoff = \"2s\"",
    );
    let error = Ekafka::from_toml_str(&both, "kafka")
        .unwrap_err()
        .to_string();
    // The key path is the one written (the guide spells it JoinGroupBackoff).
    assert!(
        error.contains("cg1.JoinGroupBackoff") && error.contains("cg1.restartBackoff"),
        "{error}"
    );
}

#[test]
fn secrets_come_from_the_environment_or_a_file_and_a_missing_one_fails_at_load() {
    let variable = ekafka::testing::unique_name("EKAFKA_NOT_SET").to_uppercase();
    let error = fail(&format!(
        "[kafka]\nbrokers = [\"b:9092\"]\nsaslMechanism = \"PLAIN\"\nsaslUserName = \"u\"\n\
         saslPassword = {{ env = {variable:?} }}\n"
    ));
    assert_eq!(error.path(), "kafka.saslPassword");
    assert!(
        error
            .to_string()
            .contains(&format!("environment variable {variable:?}")),
        "{error}"
    );

    let file = std::env::temp_dir().join(ekafka::testing::unique_name("key-password"));
    std::fs::write(&file, "Zq-key-secret\n").unwrap();
    let config = load(&format!(
        "[kafka]\nbrokers = [\"b:9092\"]\n[kafka.tls]\nkeyPassword = {{ file = {:?} }}\n",
        file.to_str().unwrap()
    ));
    let _ = std::fs::remove_file(&file);
    let tls = config.tls.as_ref().expect("tls");
    let password = tls.key_password.as_ref().expect("keyPassword");
    assert_eq!(password.expose(), "Zq-key-secret");
    assert!(!format!("{config:?}").contains("Zq-key-secret"), "redacted");
}
