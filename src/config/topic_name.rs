//! Kafka's rules for a topic name, checked before anything is sent: a name
//! the broker would refuse fails at once, naming what is wrong with it, on
//! any cluster (the embedded one takes any name).

use super::error::{ConfigError, ConfigProblem};
use super::reader::Section;

/// The longest topic name Kafka takes.
const MAX_TOPIC_NAME: usize = 249;

/// What is wrong with `name` as a Kafka topic name, or `None` when it is one.
///
/// ```
/// use ekafka::config::topic_name_problem;
/// assert_eq!(topic_name_problem("orders.v2"), None);
/// assert!(topic_name_problem("bad topic!").unwrap().contains("' '"));
/// ```
#[must_use]
pub fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a topic name cannot be empty".into());
    }
    if name == "." || name == ".." {
        return Some(format!("a topic name cannot be {name:?}"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Some(format!(
            "a topic name has at most {MAX_TOPIC_NAME} characters, this one {}",
            name.len()
        ));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    name.chars().find(|c| !legal(*c)).map(|c| {
        format!(
            "{c:?} is not allowed in a topic name (ASCII letters, digits, '.', '_' and '-' are)"
        )
    })
}

/// Refuses `name`, the value of `key` in `section`, when Kafka would.
pub(crate) fn check_topic_name(
    section: &Section<'_>,
    key: &'static str,
    name: &str,
) -> Result<(), ConfigError> {
    match topic_name_problem(name) {
        None => Ok(()),
        Some(problem) => Err(ConfigError::new(
            section.key_path(key),
            ConfigProblem::InvalidValue {
                found: format!("{name:?}"),
                expected: format!("a valid topic name: {problem}"),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::topic_name_problem;

    #[test]
    fn kafkas_topic_name_rules() {
        for good in ["t", "orders", "a.b_c-D9", &"x".repeat(249)] {
            assert_eq!(topic_name_problem(good), None, "{good}");
        }
        for (bad, says) in [
            ("", "empty"),
            (".", "\".\""),
            ("..", "\"..\""),
            ("bad topic!", "' '"),
            ("tópico", "'ó'"),
            (&"x".repeat(250), "at most 249"),
        ] {
            let problem = topic_name_problem(bad).expect(bad);
            assert!(problem.contains(says), "{bad:?}: {problem}");
        }
    }
}
