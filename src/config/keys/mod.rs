//! The config tables (in the README and in the guide's config chapter),
//! made from the keys' declarations (see `config::key`), and the tests that
//! hold everything else to them:
//! - both copies of the tables are rendered from the declarations (run the
//!   tests with `EKAFKA_BLESS=1` to rewrite them after changing a key);
//! - the reader asks for exactly the keys described, table by table;
//! - every default written as a TOML value is the real default: a config
//!   that sets the key to it reads the same as one that leaves it out;
//! - every librdkafka property a key names is set by the mapping when the
//!   key is.

use std::collections::BTreeSet;

use super::key::{Row, Settings};
use super::reader::asked;
use super::{
    Config, ConsumerConfig, ConsumerGroupConfig, ConsumerServerConfig, ProducerConfig,
    RestartPolicy, RestartSettings,
};

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

const ALL: [Table; 5] = [
    Table::Kafka,
    Table::Producer,
    Table::Consumers,
    Table::Server,
    Table::Restart,
];

const CONSUMERS: &str = "kafka.consumers.NAME";
const GROUPS: &str = "kafka.consumerGroups.NAME";

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
            Table::Kafka | Table::Producer | Table::Consumers => {
                "| key | default | librdkafka property: meaning |"
            }
            Table::Server | Table::Restart => "| key | default | meaning |",
        }
    }

    /// The config tables the keys of a row of this README table belong to.
    fn tables(self, only: Option<Only>) -> Vec<&'static str> {
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

    /// The rows of this README table, in the order their fields are declared.
    fn rows(self) -> Vec<(Row, Option<Only>)> {
        let restart = described::<RestartSettings>();
        let own = |rows: Vec<Row>| -> Vec<Row> {
            rows.into_iter()
                .filter(|row| !restart.iter().any(|r| r.key == row.key))
                .collect()
        };
        let all = |rows: Vec<Row>| rows.into_iter().map(|row| (row, None)).collect();
        match self {
            Table::Kafka => all(described::<Config>()),
            Table::Producer => all(own(described::<ProducerConfig>())),
            Table::Server => all(own(described::<ConsumerServerConfig>())),
            Table::Restart => all(restart.clone()),
            Table::Consumers => merge(
                own(described::<ConsumerConfig>()),
                own(described::<ConsumerGroupConfig>()),
            ),
        }
    }
}

fn described<S: Settings>() -> Vec<Row> {
    let mut rows = Vec::new();
    S::describe(&mut rows);
    rows
}

/// The consumers' rows and the groups', one table: a row both have once,
/// the others marked with their kind, each group row after the one before it.
fn merge(consumers: Vec<Row>, groups: Vec<Row>) -> Vec<(Row, Option<Only>)> {
    let mut merged: Vec<(Row, Option<Only>)> = consumers
        .into_iter()
        .map(|row| (row, Some(Only::Consumers)))
        .collect();
    // Group rows before the first row both have go after the consumers' own.
    let mut after = groups
        .iter()
        .find_map(|row| merged.iter().position(|(shared, _)| shared == row))
        .unwrap_or(merged.len());
    for row in groups {
        match merged.iter().position(|(shared, _)| *shared == row) {
            Some(index) => {
                merged[index].1 = None;
                after = index + 1;
            }
            None => {
                merged.insert(after, (row, Some(Only::Groups)));
                after += 1;
            }
        }
    }
    merged
}

/// The README table of `section`, from its header to its last row.
fn render(section: Table) -> String {
    let mut text = format!("{}\n|---|---|---|\n", section.columns());
    for (row, only) in section.rows() {
        let only = match only {
            Some(Only::Groups) => " (groups)",
            Some(Only::Consumers) => " (consumers)",
            None => "",
        };
        let meaning = match (row.property, row.meaning.is_empty()) {
            (Some(property), true) => format!("`{property}`"),
            (Some(property), false) => format!("`{property}`: {}", row.meaning),
            (None, _) => row.meaning.clone(),
        };
        text.push_str(&format!(
            "| `{}`{only} | {} | {meaning} |\n",
            row.key, row.default
        ));
    }
    text
}

/// Where key `key` of a README row for `table` lives: `x.y` is key `y` of the
/// nested table `table.x`.
fn locate<'k>(table: &str, key: &'k str) -> (String, &'k str) {
    match key.split_once('.') {
        Some((nested, key)) => (format!("{table}.{nested}"), key),
        None => (table.to_string(), key),
    }
}

/// (table, key) of every key described; `x.y` also describes key `x`.
fn described_keys() -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    for section in ALL {
        for (row, only) in section.rows() {
            for table in section.tables(only) {
                if let Some((nested, _)) = row.key.split_once('.') {
                    keys.insert((table.to_string(), nested.to_string()));
                }
                let (table, key) = locate(table, &row.key);
                keys.insert((table, key.to_string()));
            }
        }
    }
    keys
}

/// A config with every table present, so every key is asked for; `extra`
/// goes into the tables `table` names (`kafka.producers.NAME` and so on).
fn config_with(table: &str, extra: &str) -> String {
    config_with_all(&[(table, extra.to_string())])
}

/// Like [`config_with`], with lines added to several tables.
fn config_with_all(extras: &[(&str, String)]) -> String {
    // Every nested table of [kafka] the description names (`client.timeout`).
    let nested: BTreeSet<String> = Table::Kafka
        .rows()
        .into_iter()
        .filter_map(|(row, _)| Some(format!("kafka.{}", row.key.split_once('.')?.0)))
        .collect();
    let mut tables: Vec<(String, String, &str)> =
        vec![("kafka".into(), "[kafka]".into(), "brokers = [\"b:1\"]")];
    tables.extend(
        nested
            .into_iter()
            .map(|t| (t.clone(), format!("[{t}]"), "")),
    );
    tables.extend([
        (
            "kafka.producers.NAME".into(),
            "[kafka.producers.p]".into(),
            "",
        ),
        (
            "kafka.consumers.NAME".into(),
            "[kafka.consumers.c]".into(),
            "topic = \"t\"",
        ),
        (
            "kafka.consumerGroups.NAME".into(),
            "[kafka.consumerGroups.g]".into(),
            "topic = \"t\"\ngroupID = \"g\"",
        ),
        (
            "kafkaConsumerServers.NAME".into(),
            "[kafkaConsumerServers.s]".into(),
            "consumerGroupName = \"g\"\ndeadLetterProducer = \"p\"",
        ),
    ]);
    let mut text = String::new();
    for (name, header, keys) in tables {
        text.push_str(&format!("{header}\n{keys}\n"));
        for (_, extra) in extras.iter().filter(|(table, _)| *table == name) {
            text.push_str(&format!("{extra}\n"));
        }
    }
    text
}

/// The config and server config of `text`, each client's restart keys
/// resolved against the default policy and the batch keys against theirs:
/// an unset key and one set to its default mean the same.
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
    server.batching.size = Some(server.batching.size_or_default());
    server.batching.wait = Some(server.batching.wait_or_default());
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
    let described = described_keys();
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
    for section in ALL {
        for (row, only) in section.rows() {
            let Some(literal) = &row.literal else {
                continue;
            };
            for table in section.tables(only) {
                let (table, key) = locate(table, &row.key);
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
fn the_config_tables_are_rendered_from_the_description() {
    // The README's tables, and the guide's config chapter (docs.rs).
    for file in ["README.md", "src/guide/config.md"] {
        check_tables(&format!("{}/{file}", env!("CARGO_MANIFEST_DIR")));
    }
}

/// The config tables in the markdown file at `path` are the rendered ones;
/// with `EKAFKA_BLESS` set they are rewritten instead.
fn check_tables(path: &str) {
    let readme = std::fs::read_to_string(path).expect("markdown readable");
    let mut blessed = readme.clone();
    let mut stale = Vec::new();
    for section in ALL {
        let start = readme
            .find(section.heading())
            .unwrap_or_else(|| panic!("{path}: the heading {}", section.heading()));
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
        std::fs::write(path, blessed).expect("markdown written");
        return;
    }
    assert!(
        stale.is_empty(),
        "{path}: config tables differ from the keys declared in src/config: {stale:?}; \
         run `EKAFKA_BLESS=1 cargo test --lib config::keys` to rewrite them"
    );
}

/// A value to set `key` to so that its mapping shows: the opposite of a
/// boolean default, the default otherwise, or a value of the right shape.
fn sample(key: &str, literal: Option<&str>) -> String {
    let readable_file = format!("{:?}", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    match (key, literal) {
        (_, Some("false")) => "true".into(),
        (_, Some("true")) => "false".into(),
        (_, Some(literal)) => literal.into(),
        ("saslMechanism", None) => "\"PLAIN\"".into(),
        ("tls.caFile" | "tls.certFile" | "tls.keyFile", None) => readable_file,
        ("groupID", None) => "\"g\"".into(),
        (_, None) => "\"x\"".into(),
    }
}

/// One config setting every key that names a property, so that the
/// properties set only when asked for (SASL, TLS, a group id) show; and what
/// each row names: (table, key, property).
fn config_setting_every_property() -> (Config, Vec<(String, String, &'static str)>) {
    let mut set: Vec<(String, String, String)> = Vec::new();
    let mut expected: Vec<(String, String, &str)> = Vec::new();
    for section in [Table::Kafka, Table::Producer, Table::Consumers] {
        for (row, only) in section.rows() {
            let Some(property) = row.property else {
                continue;
            };
            for table in section.tables(only) {
                let (table, name) = locate(table, &row.key);
                // Keys (and tables) every test config has already are left as they are.
                let in_base = matches!(
                    (table.as_str(), name),
                    ("kafka", "brokers" | "tls")
                        | (_, "topic")
                        | ("kafka.consumerGroups.NAME", "groupID")
                );
                if !in_base {
                    set.push((
                        table.clone(),
                        name.to_string(),
                        sample(&row.key, row.literal.as_deref()),
                    ));
                }
                expected.push((table, row.key.clone(), property));
            }
        }
    }
    let extras: Vec<(&str, String)> = set
        .iter()
        .map(|(table, key, value)| (table.as_str(), format!("{key} = {value}")))
        .collect();
    let text = config_with_all(&extras);
    let config = Config::from_toml_str(&text, "kafka").expect("the config reads");
    (config, expected)
}

/// Each client kind's properties for `table`, as the mapping makes them.
fn mapped(config: &Config, table: &str) -> super::Properties {
    use super::librdkafka;
    match table.split('.').take(2).collect::<Vec<_>>()[..] {
        ["kafka", "producers"] => librdkafka::producer(config, "p", &config.producers["p"]),
        ["kafka", "consumers"] => librdkafka::consumer(config, "c", &config.consumers["c"]),
        ["kafka", "consumerGroups"] => {
            librdkafka::consumer_group(config, "g", &config.consumer_groups["g"], Some(3))
        }
        _ => librdkafka::common(config),
    }
}

#[test]
fn every_librdkafka_property_described_is_set_by_the_mapping() {
    let (config, expected) = config_setting_every_property();
    let properties = |table: &str| mapped(&config, table);
    for (table, key, property) in expected {
        assert!(
            properties(&table).get(property).is_some(),
            "{table}.{key} is described as setting {property}, which the mapping does not set"
        );
    }
}

/// Each librdkafka property has one writer: no step of the mapping replaces
/// what an earlier one set (only the raw tables do, layered last).
#[test]
fn every_librdkafka_property_is_written_once_by_the_mapping() {
    let (config, _) = config_setting_every_property();
    for table in [
        "kafka",
        "kafka.producers.NAME",
        "kafka.consumers.NAME",
        "kafka.consumerGroups.NAME",
    ] {
        super::properties::rewrites::take();
        let properties = mapped(&config, table);
        assert!(!properties.is_empty());
        let rewritten = super::properties::rewrites::take();
        assert!(
            rewritten.is_empty(),
            "{table}: the mapping writes {rewritten:?} more than once"
        );
    }
}
