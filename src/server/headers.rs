//! Header names on dead-lettered and delayed messages.

/// The topic the message was consumed from.
pub const ORIGINAL_TOPIC: &str = "ekafka.original.topic";
/// Its partition.
pub const ORIGINAL_PARTITION: &str = "ekafka.original.partition";
/// Its offset.
pub const ORIGINAL_OFFSET: &str = "ekafka.original.offset";
/// The last error's text.
pub const ERROR: &str = "ekafka.error";
/// How many times the handler was tried.
pub const ATTEMPTS: &str = "ekafka.attempts";
/// On a delay topic's message: when it is due, in milliseconds since the
/// Unix epoch.
pub const RETRY_DUE: &str = "ekafka.retry.due";
