//! The README's config tables against the keys the config code reads: every
//! key documented is read, and every key read is documented.

use std::collections::BTreeSet;

use super::reader::asked;
use super::{Config, ConsumerServerConfig};

/// A config with every table present, so every key is asked for.
const EVERY_TABLE: &str = r#"
[kafka]
brokers = ["b:1"]
[kafka.client]
[kafka.tls]
[kafka.librdkafka]
[kafka.producers.p]
[kafka.consumers.c]
topic = "t"
[kafka.consumerGroups.g]
topic = "t"
groupID = "g"
[kafkaConsumerServers.s]
consumerGroupName = "g"
deadLetterProducer = "p"
"#;

/// The tables a README section documents.
fn tables_of(heading: &str) -> Option<Vec<&'static str>> {
    let tables: &[&str] = match heading {
        "### `[kafka]`" => &["kafka"],
        "### `[kafka.producers.NAME]`" => &["kafka.producers.NAME"],
        "### `[kafka.consumers.NAME]` and `[kafka.consumerGroups.NAME]`" => {
            &["kafka.consumers.NAME", "kafka.consumerGroups.NAME"]
        }
        "### `[kafkaConsumerServers.NAME]`" => &["kafkaConsumerServers.NAME"],
        "### Restart keys (producers, consumers, consumer groups, consumer servers)" => &[
            "kafka.producers.NAME",
            "kafka.consumers.NAME",
            "kafka.consumerGroups.NAME",
            "kafkaConsumerServers.NAME",
        ],
        _ => return None,
    };
    Some(tables.to_vec())
}

/// (table, key) for every key row of the README's config tables. A row's
/// first cell names one key or several (`a` / `b`); `(groups)` or
/// `(consumers)` after it limits the row to that kind; `x.y` is key `y` of
/// the nested table `x`.
fn documented(readme: &str) -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    let mut tables: Option<Vec<&str>> = None;
    for line in readme.lines() {
        if line.starts_with("#") {
            tables = tables_of(line.trim());
            continue;
        }
        let (Some(tables), Some(row)) = (&tables, line.strip_prefix("| `")) else {
            continue;
        };
        let cell = row.split(" |").next().unwrap_or_default();
        let only = if cell.ends_with("(groups)") {
            Some("kafka.consumerGroups.NAME")
        } else if cell.ends_with("(consumers)") {
            Some("kafka.consumers.NAME")
        } else {
            None
        };
        for piece in format!("`{cell}").split(" / ") {
            let name = piece.split('`').nth(1).unwrap_or_default();
            for table in tables.iter().filter(|t| only.is_none_or(|o| o == **t)) {
                match name.split_once('.') {
                    Some((nested, key)) => {
                        keys.insert((table.to_string(), nested.to_string()));
                        keys.insert((format!("{table}.{nested}"), key.to_string()));
                    }
                    None => {
                        keys.insert((table.to_string(), name.to_string()));
                    }
                }
            }
        }
    }
    keys
}

/// (table, key) for every key the config code asks for.
fn read() -> BTreeSet<(String, String)> {
    asked::take();
    Config::from_toml_str(EVERY_TABLE, "kafka").expect("the config reads");
    ConsumerServerConfig::from_toml_str(EVERY_TABLE, "kafkaConsumerServers.s")
        .expect("the server config reads");
    asked::take()
        .into_iter()
        // The tables of named clients are documented by headings of their own.
        .filter(|(table, key)| {
            !(table == "kafka" && ["producers", "consumers", "consumerGroups"].contains(&&**key))
        })
        .collect()
}

#[test]
fn the_readme_documents_every_key_read_and_no_other() {
    let documented = documented(include_str!("../../README.md"));
    let read = read();
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "read but not in the README's config tables: {undocumented:?}\n\
         in the README's config tables but never read: {unread:?}"
    );
}
