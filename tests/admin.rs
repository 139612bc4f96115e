//! The admin API (`kafka.admin()`): topics, the cluster, consumer groups,
//! their offsets and lag, and resetting those offsets.
//!
//! The embedded cluster answers metadata, offsets and commits but not
//! CreateTopics, DescribeConfigs or the group listings, so most of this runs
//! on Apache Kafka only (`./e2e.sh`, which includes the ignored tests).

mod common;

use std::time::{Duration, SystemTime};

use common::{eventually_async, write_all, Fixture};
use ekafka::admin::{OffsetReset, TopicSpec};
use ekafka::consumer::GroupEvent;
use ekafka::testing::unique_name;
use ekafka::Message;
use rdkafka::types::RDKafkaErrorCode;

/// Offsets as `(partition, offset)` pairs, in partition order.
fn by_partition(offsets: &[ekafka::consumer::PartitionOffset]) -> Vec<(i32, i64)> {
    let mut pairs: Vec<(i32, i64)> = offsets
        .iter()
        .map(|o| (o.partition.partition, o.offset))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// The fixture's component with group `cg1` on its topic.
fn component(fixture: &Fixture, group_id: &str) -> ekafka::Ekafka {
    let text = common::group_config(fixture, group_id, "");
    ekafka::Ekafka::from_toml_str(&text, "kafka")
        .expect("valid config")
        .build()
        .expect("component builds")
}

#[actix::test]
async fn describing_a_topic_lists_its_partitions_and_an_unknown_topic_is_named() {
    let fixture = Fixture::new();
    let kafka = fixture.kafka("");
    let admin = kafka.admin().expect("admin client");

    let topic = admin
        .describe_topic(&fixture.topic)
        .await
        .expect("described");
    assert_eq!(topic.name, fixture.topic);
    assert_eq!(
        topic.partitions.iter().map(|p| p.id).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for partition in &topic.partitions {
        assert!(partition.leader >= 0, "{partition:?}");
        assert!(
            partition.replicas.contains(&partition.leader),
            "{partition:?}"
        );
        assert!(!partition.in_sync.is_empty(), "{partition:?}");
    }

    let missing = unique_name("missing");
    let error = admin.describe_topic(&missing).await.unwrap_err();
    assert!(error.is_unknown_topic(), "{error}");
    assert!(error.to_string().contains(&missing), "{error}");
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn topics_are_created_reconfigured_one_key_at_a_time_and_deleted() {
    let fixture = Fixture::new();
    let admin = fixture.kafka("").admin().expect("admin client");
    let name = unique_name("admin");

    admin
        .create_topic(
            TopicSpec::new(&name, 4)
                .replication(1)
                .config("retention.ms", "3600000"),
        )
        .await
        .expect("created");
    let described = eventually_async("the new topic's metadata", || async {
        admin.describe_topic(&name).await.ok()
    })
    .await;
    assert_eq!(described.partitions.len(), 4);
    assert!(described.partitions.iter().all(|p| p.replicas.len() == 1));

    let configs = admin.topic_config(&name).await.expect("configs read");
    assert_eq!(configs["retention.ms"], "3600000");
    admin
        .alter_topic_config(&name, [("cleanup.policy", "compact")])
        .await
        .expect("altered");
    let configs = admin.topic_config(&name).await.expect("configs read");
    assert_eq!(configs["cleanup.policy"], "compact");
    // Incremental: the config set at creation is still there.
    assert_eq!(configs["retention.ms"], "3600000");

    let again = admin
        .create_topic(TopicSpec::new(&name, 1))
        .await
        .unwrap_err();
    assert_eq!(
        again.kafka_code(),
        Some(RDKafkaErrorCode::TopicAlreadyExists),
        "{again}"
    );
    assert!(again.to_string().contains(&name), "{again}");

    let bad = admin
        .alter_topic_config(&name, [("retention.ms", "soon")])
        .await
        .unwrap_err();
    assert!(bad.to_string().contains(&name), "{bad}");

    admin.delete_topics(&[&name]).await.expect("deleted");
    eventually_async("the deleted topic gone", || async {
        match admin.describe_topic(&name).await {
            Err(error) if error.is_unknown_topic() => Some(()),
            _ => None,
        }
    })
    .await;
    let missing = unique_name("missing");
    let error = admin.delete_topics(&[&missing]).await.unwrap_err();
    assert!(error.is_unknown_topic(), "{error}");
    assert!(error.to_string().contains(&missing), "{error}");
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn the_cluster_is_described_with_its_id_controller_and_brokers() {
    let fixture = Fixture::new();
    let admin = fixture.kafka("").admin().expect("admin client");
    let cluster = admin.describe_cluster().await.expect("described");
    assert!(
        cluster.id.as_deref().is_some_and(|id| !id.is_empty()),
        "{cluster:?}"
    );
    let controller = cluster.controller.expect("a controller");
    assert!(!cluster.brokers.is_empty(), "{cluster:?}");
    assert!(
        cluster.brokers.iter().any(|b| b.id == controller),
        "the controller is one of the brokers: {cluster:?}"
    );
    let bootstrap = fixture.cluster.bootstrap_servers();
    assert!(
        cluster
            .brokers
            .iter()
            .any(|b| bootstrap.contains(&format!("{}:{}", b.host, b.port))),
        "{cluster:?} advertises {bootstrap}"
    );
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn a_groups_offsets_and_lag_are_read_and_reset_only_while_it_is_empty() {
    let fixture = Fixture::new();
    let group_id = unique_name("group");
    let kafka = component(&fixture, &group_id);
    let admin = kafka.admin().expect("admin client");
    // Partition 0: five messages of an hour ago, then five of now.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let millis = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let messages = (0..10).map(|i| {
        let at = if i < 5 { hour_ago } else { SystemTime::now() };
        Message::new(format!("m-{i}"))
            .with_partition(0)
            .with_timestamp(millis(at))
    });
    write_all(&kafka, messages).await;

    // A group nobody ever joined: its offsets can be set.
    let set = admin
        .reset_offsets(
            &group_id,
            &fixture.topic,
            OffsetReset::Offsets(vec![(0, 3)]),
        )
        .await
        .expect("reset");
    assert_eq!(by_partition(&set), [(0, 3)]);
    let offsets = admin.group_offsets(&group_id).await.expect("offsets");
    assert_eq!(by_partition(&offsets), [(0, 3)]);
    let lag = admin.group_lag(&group_id).await.expect("lag");
    assert_eq!(lag.len(), 1);
    assert_eq!(
        (
            lag[0].partition,
            lag[0].committed,
            lag[0].high_watermark,
            lag[0].lag
        ),
        (0, 3, 10, 7)
    );

    let at_time = admin
        .reset_offsets(
            &group_id,
            &fixture.topic,
            OffsetReset::Time(hour_ago + Duration::from_secs(60)),
        )
        .await
        .expect("reset by time");
    // Partition 0 from its first message of now; the empty ones past their end.
    assert_eq!(by_partition(&at_time), [(0, 5), (1, 0), (2, 0)]);
    let latest = admin
        .reset_offsets(&group_id, &fixture.topic, OffsetReset::Latest)
        .await
        .expect("reset to latest");
    assert_eq!(by_partition(&latest), [(0, 10), (1, 0), (2, 0)]);
    let earliest = admin
        .reset_offsets(&group_id, &fixture.topic, OffsetReset::Earliest)
        .await
        .expect("reset to earliest");
    assert_eq!(by_partition(&earliest), [(0, 0), (1, 0), (2, 0)]);
    assert_eq!(
        by_partition(&admin.group_offsets(&group_id).await.unwrap()),
        [(0, 0), (1, 0), (2, 0)]
    );

    let beyond = admin
        .reset_offsets(
            &group_id,
            &fixture.topic,
            OffsetReset::Offsets(vec![(0, 11)]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        beyond.kafka_code(),
        Some(RDKafkaErrorCode::OffsetOutOfRange),
        "{beyond}"
    );
    assert!(beyond.to_string().contains("0..=10"), "{beyond}");

    // A member joins: the group is listed and described, and refuses a reset.
    let group = kafka.consumer_group("cg1").expect("group");
    let (events, mut group_events) = common::forwarder::<GroupEvent>();
    group.subscribe_events(events).await.expect("subscribed");
    loop {
        if let GroupEvent::Assigned(_) = common::next(&mut group_events, "assignment").await {
            break;
        }
    }
    let listed = admin.list_groups().await.expect("listed");
    let ours = listed
        .iter()
        .find(|g| g.id == group_id)
        .unwrap_or_else(|| panic!("{group_id} among {listed:?}"));
    assert!(!ours.simple, "{ours:?}");
    let described = admin.describe_group(&group_id).await.expect("described");
    assert_eq!(described.members, 1, "{described:?}");
    assert_eq!(described.state, "Stable", "{described:?}");
    let refused = admin
        .reset_offsets(&group_id, &fixture.topic, OffsetReset::Latest)
        .await
        .unwrap_err();
    assert!(refused.is_group_not_empty(), "{refused}");
    assert!(
        refused.to_string().contains(&group_id) && refused.to_string().contains("1 active member"),
        "{refused}"
    );
    assert_eq!(
        by_partition(&admin.group_offsets(&group_id).await.unwrap()),
        [(0, 0), (1, 0), (2, 0)],
        "the refused reset changed nothing"
    );
    group.close().await.expect("closed");
    kafka.close().await.expect("closed");
}
