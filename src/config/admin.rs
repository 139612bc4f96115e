//! `[kafka.admin]`: the admin client of `Ekafka::admin`.

use std::time::Duration;

use super::key::{settings, Rules};

settings! {
    /// `[kafka.admin]`: the admin client.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct AdminSettings with Default {
        /// how long one admin request (creating topics, reading a group's
        /// offsets, ...) may take before it fails with a timeout.
        pub timeout: Duration = key("timeout", "\"30s\"").above_zero(),
    }
}

impl Rules for AdminSettings {}
