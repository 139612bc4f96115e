//! Each-message servers whose handlers take decoded values.

use std::future::Future;

use actix::Recipient;

use super::{ConsumerServer, HandleValue, HandlerError, RunningServer, ServerBuilder};
use crate::codec::Decoder;
use crate::component::Ekafka;
use crate::config::ConsumerServerConfig;
use crate::consumer::ConsumedMessage;
use crate::error::Error;
use crate::record::Message;

impl ConsumerServer {
    /// Runs `handler` for the value of every message of the server's consumer
    /// group, decoded by `codec`; it gets the message too, for its key,
    /// headers and place.
    ///
    /// A message that does not decode never reaches the handler: it is a
    /// failure for good (not retried), dead-lettered or stopping its
    /// partition as any fatal failure, with an error naming its topic,
    /// partition, offset and the codec's reason. Everything else is as in
    /// [`on_each_message`](Self::on_each_message); a message retried after a
    /// recoverable failure is decoded again.
    ///
    /// ```no_run
    /// # async fn run(kafka: ekafka::Ekafka, config: ekafka::config::ConsumerServerConfig) -> Result<(), ekafka::Error> {
    /// use ekafka::codec::Json;
    /// use ekafka::server::ConsumerServer;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Order {
    ///     id: u64,
    /// }
    ///
    /// let server = ConsumerServer::on_each_value(&kafka, &config, Json, |order: Order, message| async move {
    ///     println!("order {} from partition {}", order.id, message.partition());
    ///     Ok(())
    /// })
    /// .await?;
    /// # server.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn on_each_value<T, C, F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        codec: C,
        handler: F,
    ) -> Result<RunningServer, Error>
    where
        T: 'static,
        C: Decoder<T>,
        F: Fn(T, ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        Self::builder(kafka, config)
            .on_each_value(codec, handler)
            .await
    }

    /// Like [`on_each_value`](Self::on_each_value), with an actor as the
    /// handler: each decoded message is sent to `handler` as a
    /// [`HandleValue`] and its reply is the outcome.
    pub async fn on_each_value_actor<T, C>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        codec: C,
        handler: Recipient<HandleValue<T>>,
    ) -> Result<RunningServer, Error>
    where
        T: Send + 'static,
        C: Decoder<T>,
    {
        Self::builder(kafka, config)
            .on_each_value_actor(codec, handler)
            .await
    }
}

impl ServerBuilder<'_> {
    /// Starts the server with `handler` run for the value of every message,
    /// decoded by `codec` (see
    /// [`ConsumerServer::on_each_value`](super::ConsumerServer::on_each_value)).
    pub async fn on_each_value<T, C, F, Fut>(
        self,
        codec: C,
        handler: F,
    ) -> Result<RunningServer, Error>
    where
        T: 'static,
        C: Decoder<T>,
        F: Fn(T, ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        self.on_each_message(move |message| decode_then(&codec, &handler, message))
            .await
    }

    /// Like [`on_each_value`](Self::on_each_value), with an actor as the
    /// handler (see
    /// [`ConsumerServer::on_each_value_actor`](super::ConsumerServer::on_each_value_actor)).
    /// An actor that stopped counts as a fatal failure.
    pub async fn on_each_value_actor<T, C>(
        self,
        codec: C,
        handler: Recipient<HandleValue<T>>,
    ) -> Result<RunningServer, Error>
    where
        T: Send + 'static,
        C: Decoder<T>,
    {
        self.on_each_value(codec, move |value, message| {
            let asked = handler.send(HandleValue { value, message });
            async move {
                asked.await.unwrap_or_else(|e| {
                    Err(HandlerError::fatal(format!(
                        "the handler actor is gone: {e}"
                    )))
                })
            }
        })
        .await
    }

    /// Exactly-once mode (see
    /// [`ConsumerServer::on_each_message_transform`](super::ConsumerServer::on_each_message_transform))
    /// with `handler` given each input's value, decoded by `codec`. An input
    /// that does not decode fails for good, as in
    /// [`on_each_value`](Self::on_each_value). Encode the outputs with a
    /// codec's [`to_message`](crate::codec::Encoder::to_message) or a
    /// [`TypedProducer::message`](crate::producer::TypedProducer::message).
    pub async fn on_each_value_transform<T, C, F, Fut>(
        self,
        codec: C,
        handler: F,
    ) -> Result<RunningServer, Error>
    where
        T: 'static,
        C: Decoder<T>,
        F: Fn(T, ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<Vec<Message>, HandlerError>> + 'static,
    {
        self.on_each_message_transform(move |message| decode_then(&codec, &handler, message))
            .await
    }
}

/// Decodes `message` and runs `handler` on its value; a message that does
/// not decode fails for good without reaching it.
fn decode_then<T, C, F, Fut, R>(
    codec: &C,
    handler: &F,
    message: ConsumedMessage,
) -> impl Future<Output = Result<R, HandlerError>>
where
    C: Decoder<T>,
    F: Fn(T, ConsumedMessage) -> Fut,
    Fut: Future<Output = Result<R, HandlerError>>,
{
    let handled = codec
        .value_of(&message)
        .map(|value| handler(value, message));
    async move {
        match handled {
            Ok(handling) => handling.await,
            Err(undecodable) => Err(undecodable.into()),
        }
    }
}
