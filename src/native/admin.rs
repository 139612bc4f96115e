//! The admin operations rust-rdkafka does not wrap, through librdkafka's C
//! API: listing and describing consumer groups, reading and altering a
//! group's committed offsets, altering topic configs incrementally, and
//! describing the cluster.
//!
//! Every request goes the same way ([`request`]): admin options with
//! librdkafka's timeout ([`Wait::native`]), a queue of its own, the call, then
//! a blocking wait on the queue for the one result event, bounded by our own
//! [`Wait::answer`]. So these functions block: callers run them on a blocking
//! thread. Everything read from a result is copied into owned values before
//! the event is destroyed.

use std::ffi::{c_char, CStr, CString};
use std::time::Duration;

use rdkafka::bindings as ffi;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

/// Why an admin request failed: librdkafka's or the broker's code, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: RDKafkaErrorCode,
    pub(crate) reason: String,
    /// No answer came within our wait: the request is still pending in
    /// librdkafka, and its client must be retired (see `request_client`).
    pub(crate) unanswered: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.reason)
    }
}

impl Failure {
    pub(crate) fn new(code: RDKafkaErrorCode, reason: impl Into<String>) -> Self {
        Failure {
            code,
            reason: reason.into(),
            unanswered: false,
        }
    }

    /// A failure from an `rd_kafka_error_t`, or `None` for a null one.
    ///
    /// # Safety
    /// `error` is null or a live `rd_kafka_error_t`.
    unsafe fn from_error(error: *const ffi::rd_kafka_error_t) -> Option<Self> {
        if error.is_null() {
            return None;
        }
        Some(Failure::new(
            ffi::rd_kafka_error_code(error).into(),
            text(ffi::rd_kafka_error_string(error)),
        ))
    }

    /// A failure from a response code, or `None` for no error.
    fn from_code(code: ffi::rd_kafka_resp_err_t, reason: impl FnOnce() -> String) -> Option<Self> {
        (code != ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
            .then(|| Failure::new(code.into(), reason()))
    }
}

/// The client an admin request is made on, borrowed for the request: its
/// handle stays valid while the borrow lasts; librdkafka's handle is safe to
/// use from any thread.
#[derive(Clone, Copy)]
pub(crate) struct Client<'c> {
    handle: *mut ffi::rd_kafka_t,
    client: std::marker::PhantomData<&'c ()>,
}

// SAFETY: see the type's doc; rd_kafka_t is thread-safe.
unsafe impl Send for Client<'_> {}

impl<'c> Client<'c> {
    /// The handle of `client`, valid while it is borrowed.
    pub(crate) fn of<C: rdkafka::client::ClientContext>(
        client: &'c rdkafka::client::Client<C>,
    ) -> Self {
        Client {
            handle: client.native_ptr(),
            client: std::marker::PhantomData,
        }
    }
}

/// A result event, destroyed when dropped.
struct Event(*mut ffi::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the event came from rd_kafka_queue_poll and is ours.
        unsafe { ffi::rd_kafka_event_destroy(self.0) }
    }
}

/// Copies a C string; empty for null.
///
/// # Safety
/// `ptr` is null or a NUL-terminated string alive for the call.
unsafe fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    CStr::from_ptr(ptr).to_string_lossy().into_owned()
}

/// A C string of `value`, or a failure naming what held a NUL byte.
fn c_string(value: &str, what: &str) -> Result<CString, Failure> {
    CString::new(value).map_err(|_| {
        Failure::new(
            RDKafkaErrorCode::InvalidArgument,
            format!("{what} {value:?} holds a NUL byte"),
        )
    })
}

/// How long one request is waited for, and how long librdkafka may take over
/// it: longer, so that librdkafka never times out a request on a client that
/// lives on (see `request_client`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    pub(crate) answer: Duration,
    pub(crate) native: Duration,
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// Makes one admin request and waits for its result event: `send` makes the
/// call with the options and the queue it is given.
fn request(
    client: Client<'_>,
    operation: ffi::rd_kafka_admin_op_t,
    wait: Wait,
    send: impl FnOnce(*const ffi::rd_kafka_AdminOptions_t, *mut ffi::rd_kafka_queue_t),
) -> Result<Event, Failure> {
    // SAFETY: the client is alive (see `Client`); the options and queue are
    // made here and destroyed here after the result came or the wait ended
    // (librdkafka copies the options into the request, and keeps the queue
    // alive while the request holds it).
    unsafe {
        let options = ffi::rd_kafka_AdminOptions_new(client.handle, operation);
        let mut errstr = [0 as c_char; 512];
        let set = ffi::rd_kafka_AdminOptions_set_request_timeout(
            options,
            millis(wait.native),
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        if let Some(failure) = Failure::from_code(set, || text(errstr.as_ptr())) {
            ffi::rd_kafka_AdminOptions_destroy(options);
            return Err(failure);
        }
        let queue = ffi::rd_kafka_queue_new(client.handle);
        send(options, queue);
        let event = ffi::rd_kafka_queue_poll(queue, millis(wait.answer));
        ffi::rd_kafka_queue_destroy(queue);
        ffi::rd_kafka_AdminOptions_destroy(options);
        if event.is_null() {
            return Err(Failure {
                unanswered: true,
                ..Failure::new(
                    RDKafkaErrorCode::OperationTimedOut,
                    format!("no answer within {:?}", wait.answer),
                )
            });
        }
        let event = Event(event);
        let code = ffi::rd_kafka_event_error(event.0);
        if let Some(failure) =
            Failure::from_code(code, || text(ffi::rd_kafka_event_error_string(event.0)))
        {
            return Err(failure);
        }
        Ok(event)
    }
}

/// The elements of an array librdkafka returned with its count.
///
/// # Safety
/// `items` points at `count` pointers (or is null with `count` 0), alive for
/// the lifetime the caller gives the slice.
unsafe fn array<'a, T>(items: *mut *const T, count: usize) -> &'a [*const T] {
    if items.is_null() || count == 0 {
        return &[];
    }
    std::slice::from_raw_parts(items, count)
}

/// The typed result of `event`, or a failure when the event is not the
/// answer to the request (the accessor returns null for another type):
/// never read through a null result.
fn result_of<R>(
    event: &Event,
    accessor: unsafe extern "C" fn(*mut ffi::rd_kafka_event_t) -> *const R,
) -> Result<*const R, Failure> {
    // SAFETY: the event is live; the accessor only reads its type.
    let result = unsafe { accessor(event.0) };
    if result.is_null() {
        // SAFETY: as above; the name is a static string.
        let kind = unsafe { text(ffi::rd_kafka_event_name(event.0)) };
        return Err(Failure::new(
            RDKafkaErrorCode::Fail,
            format!("librdkafka answered with a {kind} event, not the request's result"),
        ));
    }
    Ok(result)
}

/// One consumer group, as listed.
pub(crate) struct Listing {
    pub(crate) id: String,
    pub(crate) state: String,
    pub(crate) protocol: String,
    pub(crate) simple: bool,
}

/// Every consumer group the cluster knows; a broker that failed to answer
/// fails the whole listing (a partial list would pass for a complete one).
pub(crate) fn list_groups(client: Client<'_>, wait: Wait) -> Result<Vec<Listing>, Failure> {
    use ffi::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS as OP;
    let event = request(client, OP, wait, |options, queue| {
        // SAFETY: arguments made by `request`.
        unsafe { ffi::rd_kafka_ListConsumerGroups(client.handle, options, queue) }
    })?;
    // SAFETY: the result and everything in it live as long as `event`, and
    // are copied out before it is dropped.
    unsafe {
        let result = result_of(&event, ffi::rd_kafka_event_ListConsumerGroups_result)?;
        let mut count = 0;
        let errors = ffi::rd_kafka_ListConsumerGroups_result_errors(result, &mut count);
        if let Some(failure) = array(errors, count)
            .first()
            .and_then(|&error| Failure::from_error(error))
        {
            return Err(failure);
        }
        let mut count = 0;
        let valid = ffi::rd_kafka_ListConsumerGroups_result_valid(result, &mut count);
        Ok(array(valid, count)
            .iter()
            .map(|&group| Listing {
                id: text(ffi::rd_kafka_ConsumerGroupListing_group_id(group)),
                state: text(ffi::rd_kafka_consumer_group_state_name(
                    ffi::rd_kafka_ConsumerGroupListing_state(group),
                )),
                protocol: text(ffi::rd_kafka_consumer_group_type_name(
                    ffi::rd_kafka_ConsumerGroupListing_type(group),
                )),
                simple: ffi::rd_kafka_ConsumerGroupListing_is_simple_consumer_group(group) != 0,
            })
            .collect())
    }
}

/// One consumer group, as described.
pub(crate) struct Description {
    pub(crate) state: String,
    pub(crate) protocol: String,
    pub(crate) members: usize,
    pub(crate) coordinator: Option<i32>,
}

pub(crate) fn describe_group(
    client: Client<'_>,
    group: &str,
    wait: Wait,
) -> Result<Description, Failure> {
    use ffi::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS as OP;
    let name = c_string(group, "group id")?;
    let event = request(client, OP, wait, |options, queue| {
        let mut names = [name.as_ptr()];
        // SAFETY: `names` holds one live C string for the call, which copies it.
        unsafe {
            ffi::rd_kafka_DescribeConsumerGroups(
                client.handle,
                names.as_mut_ptr(),
                1,
                options,
                queue,
            )
        }
    })?;
    // SAFETY: as in `list_groups`.
    unsafe {
        let result = result_of(&event, ffi::rd_kafka_event_DescribeConsumerGroups_result)?;
        let mut count = 0;
        let groups = ffi::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        let Some(&described) = array(groups, count).first() else {
            return Err(Failure::new(
                RDKafkaErrorCode::Fail,
                format!("no description of group {group:?} in the answer"),
            ));
        };
        if let Some(failure) =
            Failure::from_error(ffi::rd_kafka_ConsumerGroupDescription_error(described))
        {
            return Err(failure);
        }
        let coordinator = ffi::rd_kafka_ConsumerGroupDescription_coordinator(described);
        Ok(Description {
            state: text(ffi::rd_kafka_consumer_group_state_name(
                ffi::rd_kafka_ConsumerGroupDescription_state(described),
            )),
            protocol: text(ffi::rd_kafka_consumer_group_type_name(
                ffi::rd_kafka_ConsumerGroupDescription_type(described),
            )),
            members: ffi::rd_kafka_ConsumerGroupDescription_member_count(described),
            coordinator: (!coordinator.is_null()).then(|| ffi::rd_kafka_Node_id(coordinator)),
        })
    }
}

/// One partition of a group's offsets: its offset, or why it failed.
pub(crate) struct PartitionResult {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The offset; negative when none is committed.
    pub(crate) offset: i64,
    pub(crate) failure: Option<Failure>,
}

/// Copies the partitions of a group result.
///
/// # Safety
/// `group` is a live `rd_kafka_group_result_t`.
unsafe fn group_partitions(
    group: *const ffi::rd_kafka_group_result_t,
) -> Result<Vec<PartitionResult>, Failure> {
    if let Some(failure) = Failure::from_error(ffi::rd_kafka_group_result_error(group)) {
        return Err(failure);
    }
    let list = ffi::rd_kafka_group_result_partitions(group);
    if list.is_null() || (*list).cnt <= 0 {
        return Ok(Vec::new());
    }
    let elems = std::slice::from_raw_parts((*list).elems, (*list).cnt as usize);
    Ok(elems
        .iter()
        .map(|elem| PartitionResult {
            topic: text(elem.topic),
            partition: elem.partition,
            offset: elem.offset,
            failure: Failure::from_code(elem.err, || RDKafkaErrorCode::from(elem.err).to_string()),
        })
        .collect())
}

/// The first group result of an answer.
///
/// # Safety
/// `groups` and `count` come from a live result.
unsafe fn first_group(
    groups: *mut *const ffi::rd_kafka_group_result_t,
    count: usize,
    group: &str,
) -> Result<Vec<PartitionResult>, Failure> {
    match array(groups, count).first() {
        Some(&result) => group_partitions(result),
        None => Err(Failure::new(
            RDKafkaErrorCode::Fail,
            format!("no result for group {group:?} in the answer"),
        )),
    }
}

/// The offsets `group` committed, on every partition it committed on.
pub(crate) fn group_offsets(
    client: Client<'_>,
    group: &str,
    wait: Wait,
) -> Result<Vec<PartitionResult>, Failure> {
    use ffi::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS as OP;
    let name = c_string(group, "group id")?;
    let event = request(client, OP, wait, |options, queue| {
        // SAFETY: the request object is made, handed over (librdkafka copies
        // it) and destroyed here; a null partition list asks for all.
        unsafe {
            let mut asked = [ffi::rd_kafka_ListConsumerGroupOffsets_new(
                name.as_ptr(),
                std::ptr::null(),
            )];
            ffi::rd_kafka_ListConsumerGroupOffsets(
                client.handle,
                asked.as_mut_ptr(),
                1,
                options,
                queue,
            );
            ffi::rd_kafka_ListConsumerGroupOffsets_destroy(asked[0]);
        }
    })?;
    // SAFETY: as in `list_groups`.
    unsafe {
        let result = result_of(&event, ffi::rd_kafka_event_ListConsumerGroupOffsets_result)?;
        let mut count = 0;
        let groups = ffi::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count);
        first_group(groups, count, group)
    }
}

/// Sets `group`'s committed offsets to those in `offsets`; per partition,
/// whether it was set.
pub(crate) fn alter_group_offsets(
    client: Client<'_>,
    group: &str,
    offsets: &TopicPartitionList,
    wait: Wait,
) -> Result<Vec<PartitionResult>, Failure> {
    use ffi::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS as OP;
    let name = c_string(group, "group id")?;
    let event = request(client, OP, wait, |options, queue| {
        // SAFETY: as in `group_offsets`; the list is copied by `_new`.
        unsafe {
            let mut asked = [ffi::rd_kafka_AlterConsumerGroupOffsets_new(
                name.as_ptr(),
                offsets.ptr(),
            )];
            ffi::rd_kafka_AlterConsumerGroupOffsets(
                client.handle,
                asked.as_mut_ptr(),
                1,
                options,
                queue,
            );
            ffi::rd_kafka_AlterConsumerGroupOffsets_destroy(asked[0]);
        }
    })?;
    // SAFETY: as in `list_groups`.
    unsafe {
        let result = result_of(&event, ffi::rd_kafka_event_AlterConsumerGroupOffsets_result)?;
        let mut count = 0;
        let groups = ffi::rd_kafka_AlterConsumerGroupOffsets_result_groups(result, &mut count);
        first_group(groups, count, group)
    }
}

/// Sets each `(name, value)` of `changes` on `topic`, leaving its other
/// configs as they are (IncrementalAlterConfigs; the older AlterConfigs
/// rust-rdkafka wraps resets every config not named).
pub(crate) fn alter_topic_config(
    client: Client<'_>,
    topic: &str,
    changes: &[(String, String)],
    wait: Wait,
) -> Result<(), Failure> {
    use ffi::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS as OP;
    let topic_name = c_string(topic, "topic")?;
    let changes = changes
        .iter()
        .map(|(name, value)| {
            Ok((
                c_string(name, "config name")?,
                c_string(value, "config value")?,
            ))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    // SAFETY: the resource is made, filled, handed over (librdkafka copies
    // it) and destroyed here, on every path.
    let resource = unsafe {
        let resource = ffi::rd_kafka_ConfigResource_new(
            ffi::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            topic_name.as_ptr(),
        );
        for (name, value) in &changes {
            let error = ffi::rd_kafka_ConfigResource_add_incremental_config(
                resource,
                name.as_ptr(),
                ffi::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                value.as_ptr(),
            );
            if let Some(failure) = Failure::from_error(error) {
                ffi::rd_kafka_error_destroy(error);
                ffi::rd_kafka_ConfigResource_destroy(resource);
                return Err(failure);
            }
        }
        resource
    };
    let answered = request(client, OP, wait, |options, queue| {
        let mut resources = [resource];
        // SAFETY: one live resource, copied by the call.
        unsafe {
            ffi::rd_kafka_IncrementalAlterConfigs(
                client.handle,
                resources.as_mut_ptr(),
                1,
                options,
                queue,
            )
        }
    });
    // SAFETY: made above, no longer used.
    unsafe { ffi::rd_kafka_ConfigResource_destroy(resource) };
    let event = answered?;
    // SAFETY: as in `list_groups`.
    unsafe {
        let result = result_of(&event, ffi::rd_kafka_event_IncrementalAlterConfigs_result)?;
        let mut count = 0;
        let resources = ffi::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for &resource in array(resources, count) {
            if let Some(failure) =
                Failure::from_code(ffi::rd_kafka_ConfigResource_error(resource), || {
                    text(ffi::rd_kafka_ConfigResource_error_string(resource))
                })
            {
                return Err(failure);
            }
        }
        Ok(())
    }
}

/// A broker of the cluster.
pub(crate) struct Node {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) rack: Option<String>,
}

/// The cluster's id, its controller and its brokers.
pub(crate) struct Cluster {
    pub(crate) id: Option<String>,
    pub(crate) controller: Option<i32>,
    pub(crate) nodes: Vec<Node>,
}

pub(crate) fn describe_cluster(client: Client<'_>, wait: Wait) -> Result<Cluster, Failure> {
    use ffi::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER as OP;
    let event = request(client, OP, wait, |options, queue| {
        // SAFETY: arguments made by `request`.
        unsafe { ffi::rd_kafka_DescribeCluster(client.handle, options, queue) }
    })?;
    // SAFETY: as in `list_groups`.
    unsafe {
        let result = result_of(&event, ffi::rd_kafka_event_DescribeCluster_result)?;
        let mut count = 0;
        let nodes = ffi::rd_kafka_DescribeCluster_result_nodes(result, &mut count);
        let controller = ffi::rd_kafka_DescribeCluster_result_controller(result);
        let id = ffi::rd_kafka_DescribeCluster_result_cluster_id(result);
        Ok(Cluster {
            id: (!id.is_null()).then(|| text(id)),
            controller: (!controller.is_null()).then(|| ffi::rd_kafka_Node_id(controller)),
            nodes: array(nodes, count)
                .iter()
                .map(|&node| {
                    let rack = ffi::rd_kafka_Node_rack(node);
                    Node {
                        id: ffi::rd_kafka_Node_id(node),
                        host: text(ffi::rd_kafka_Node_host(node)),
                        port: ffi::rd_kafka_Node_port(node),
                        rack: (!rack.is_null()).then(|| text(rack)),
                    }
                })
                .collect(),
        })
    }
}
