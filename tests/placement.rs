//! Where keyed messages land: `balancer = "hash"` puts every key on the partition
//! Go ekafka's `hash` (kafka-go's `Hash`) puts it, and `balancer = "murmur2"` on
//! the Java client's. A service moved from Go to Rust writes a key's new values
//! next to its old ones only if both agree on every key; the placement below is
//! computed from the algorithms' definitions, not taken from the code under test.

use std::collections::HashMap;

use ekafka::testing::{unique_name, TestCluster};
use ekafka::{Message, Outcome};

/// The hash functions and partition rules, written from their definitions.
mod reference {
    /// 32-bit FNV-1a: offset basis 2166136261, prime 16777619, xor then multiply.
    pub(super) fn fnv1a(key: &[u8]) -> u32 {
        key.iter().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
        })
    }

    /// kafka-go's `Hash` (and Sarama's hash partitioner): the hash as a signed
    /// 32-bit number, its remainder (which takes the dividend's sign), negated
    /// when negative.
    pub(super) fn go_hash_partition(key: &[u8], partitions: i32) -> i32 {
        let remainder = (fnv1a(key) as i32) % partitions;
        if remainder < 0 {
            -remainder
        } else {
            remainder
        }
    }

    /// Kafka's murmur2 (the Java client's `Utils.murmur2`): seed 0x9747b28c,
    /// little-endian 4-byte blocks, then the tail and a final mix.
    pub(super) fn murmur2(key: &[u8]) -> u32 {
        const M: u32 = 0x5bd1_e995;
        const R: u32 = 24;
        let mut h: u32 = 0x9747_b28c ^ key.len() as u32;
        let blocks = key.chunks_exact(4);
        let tail = blocks.remainder();
        for block in blocks {
            let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            k = k.wrapping_mul(M);
            k ^= k >> R;
            k = k.wrapping_mul(M);
            h = h.wrapping_mul(M) ^ k;
        }
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        if !tail.is_empty() {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        h ^= h >> 13;
        h = h.wrapping_mul(M);
        h ^ (h >> 15)
    }

    /// The Java client's default partitioner for a keyed message: the sign bit
    /// cleared, then the remainder.
    pub(super) fn java_partition(key: &[u8], partitions: i32) -> i32 {
        ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
    }
}

#[test]
fn the_reference_hashes_match_their_published_vectors() {
    // FNV-1a's own test vectors.
    assert_eq!(reference::fnv1a(b""), 0x811c_9dc5);
    assert_eq!(reference::fnv1a(b"a"), 0xe40c_292c);
    assert_eq!(reference::fnv1a(b"foobar"), 0xbf9c_f968);
    // Kafka's murmur2, as the Java client computes it.
    assert_eq!(reference::murmur2(b"kafka"), 0xd067_cf64);
    assert_eq!(reference::murmur2(b"giberish123456789"), 0x8f55_2b0c);
    assert_eq!(reference::murmur2(b"1234"), 0x9fc9_7b14);
    assert_eq!(reference::murmur2(b"234"), 0xe7c0_09ca);
    assert_eq!(reference::murmur2(b""), 0x106e_08d9);
    // The sign rule matters: "" hashes to a negative int32 (-2128831035), whose
    // remainder by 12 is -3, so Go puts it on 3 where an unsigned modulo would
    // give 1.
    assert_eq!(reference::go_hash_partition(b"", 12), 3);
    assert_eq!(0x811c_9dc5_u32 % 12, 1);
}

/// Writes `keys` through a producer with `balancer` to a fresh topic of
/// `partitions` partitions; returns the partition each key landed on.
async fn placement(balancer: &str, partitions: i32, keys: &[Vec<u8>]) -> Vec<i32> {
    let cluster = TestCluster::from_env().expect("test cluster available");
    let topic = unique_name("placement");
    cluster
        .create_topic_with_partitions(&topic, partitions)
        .expect("topic created");
    let config = format!(
        "[kafka]\n{}\n[kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\n\
         balancer = {balancer:?}\n",
        cluster.brokers_line()
    );
    let kafka = ekafka::Ekafka::from_toml_str(&config, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write(
            keys.iter()
                .map(|key| Message::new("v").with_key(key.clone())),
        )
        .await
        .unwrap();
    report
        .outcomes()
        .iter()
        .map(|outcome| match outcome {
            Outcome::Delivered(delivery) => delivery.partition,
            other => panic!("expected a delivery, got {other:?}"),
        })
        .collect()
}

/// 1,000 keys of the shapes services use (ids, uuids-ish text, numbers as
/// text), plus the empty key, which is hashed (only a missing key is not).
fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..999)
        .map(|i| match i % 3 {
            0 => format!("user-{i}").into_bytes(),
            1 => format!("{:08x}-{i}", i * 2_654_435_761_u64).into_bytes(),
            _ => i.to_string().into_bytes(),
        })
        .collect();
    keys.push(Vec::new());
    keys
}

/// Which keys landed elsewhere than `expected` says, as "key: got, expected".
fn misplaced(keys: &[Vec<u8>], landed: &[i32], expected: impl Fn(&[u8]) -> i32) -> Vec<String> {
    keys.iter()
        .zip(landed)
        .filter(|(key, partition)| expected(key) != **partition)
        .map(|(key, partition)| {
            format!(
                "{:?}: {partition}, expected {}",
                String::from_utf8_lossy(key),
                expected(key)
            )
        })
        .collect()
}

#[actix::test]
async fn hash_places_every_key_where_go_ekafka_does() {
    let keys = keys();
    for partitions in [3, 12] {
        let landed = placement("hash", partitions, &keys).await;
        let wrong = misplaced(&keys, &landed, |key| {
            reference::go_hash_partition(key, partitions)
        });
        assert!(
            wrong.is_empty(),
            "{} of {} keys on another partition than Go ekafka's hash ({partitions} \
             partitions), e.g. {:?}",
            wrong.len(),
            keys.len(),
            &wrong[..wrong.len().min(5)]
        );
        // Every partition gets keys: the placement is a spread, not a constant.
        let used: HashMap<i32, usize> = landed.iter().fold(HashMap::new(), |mut used, p| {
            *used.entry(*p).or_default() += 1;
            used
        });
        assert_eq!(used.len(), partitions as usize);
    }
}

#[actix::test]
async fn murmur2_places_every_key_where_the_java_client_does() {
    let keys = keys();
    for partitions in [3, 12] {
        let landed = placement("murmur2", partitions, &keys).await;
        let wrong = misplaced(&keys, &landed, |key| {
            reference::java_partition(key, partitions)
        });
        assert!(
            wrong.is_empty(),
            "{} of {} keys on another partition than the Java client's ({partitions} \
             partitions), e.g. {:?}",
            wrong.len(),
            keys.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
}
