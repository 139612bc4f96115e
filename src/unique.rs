//! Names that do not collide: for test topics and groups, and for the group
//! id librdkafka wants even from a consumer that never joins a group.

use std::hash::{BuildHasher, Hasher};

/// `prefix` plus a random suffix.
pub(crate) fn unique_name(prefix: &str) -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{prefix}-{:016x}", hasher.finish())
}
