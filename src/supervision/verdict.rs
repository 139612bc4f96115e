//! Which errors a client reports mean that the client itself failed and must
//! be replaced, as opposed to errors that concern one message or one request.

use rdkafka::types::RDKafkaErrorCode;

use crate::error::Refusal;

/// Whether a missing ACL fails the client as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthorizationScope {
    /// A producer: a missing ACL fails the messages it concerns, not the client.
    Messages,
    /// A consumer: it cannot read or join without it, so the client fails.
    Client,
}

/// Why a client must be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientFailure {
    /// librdkafka raised a fatal error: the client cannot go on.
    Fatal,
    /// The broker refused the client. librdkafka would retry forever while
    /// requests wait without a word; a restart counts against the limit, so
    /// wrong credentials end in an escalation that says so.
    Refused(Refusal),
}

impl ClientFailure {
    /// "`what`: `detail`", where `what` names the failure.
    pub(crate) fn describe(self, detail: &str) -> String {
        match self {
            ClientFailure::Fatal => format!("fatal error: {detail}"),
            ClientFailure::Refused(refusal) => format!("{}: {detail}", refusal.label()),
        }
    }
}

/// Classifies an error code a client reported: `Some` when the client failed.
pub(crate) fn client_failure(
    code: RDKafkaErrorCode,
    scope: AuthorizationScope,
) -> Option<ClientFailure> {
    if code == RDKafkaErrorCode::Fatal {
        return Some(ClientFailure::Fatal);
    }
    match Refusal::of(code)? {
        Refusal::Authorization if scope == AuthorizationScope::Messages => None,
        refusal => Some(ClientFailure::Refused(refusal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    #[test]
    fn fatal_errors_and_refused_logins_fail_every_client() {
        for scope in [AuthorizationScope::Messages, AuthorizationScope::Client] {
            assert_eq!(client_failure(C::Fatal, scope), Some(ClientFailure::Fatal));
            assert_eq!(
                client_failure(C::SaslAuthenticationFailed, scope),
                Some(ClientFailure::Refused(Refusal::Authentication))
            );
            assert_eq!(
                client_failure(C::SSL, scope),
                Some(ClientFailure::Refused(Refusal::Tls))
            );
            assert_eq!(client_failure(C::BrokerTransportFailure, scope), None);
            assert_eq!(client_failure(C::MessageTimedOut, scope), None);
        }
    }

    #[test]
    fn a_missing_acl_fails_a_consumer_but_only_the_messages_of_a_producer() {
        let code = C::TopicAuthorizationFailed;
        assert_eq!(client_failure(code, AuthorizationScope::Messages), None);
        assert_eq!(
            client_failure(code, AuthorizationScope::Client),
            Some(ClientFailure::Refused(Refusal::Authorization))
        );
    }
}
