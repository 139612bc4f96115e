//! Writing values of one type through a codec.

use std::borrow::Borrow;
use std::sync::Arc;

use super::Producer;
use crate::codec::{CodecError, Encoder};
use crate::error::Error;
use crate::record::{Message, WriteReport};

/// The key a typed producer gives each value.
type KeyOf<T> = dyn Fn(&T) -> Vec<u8> + Send + Sync;

/// A [`Producer`] that writes values of `T`, encoded by codec `C`; from
/// [`Producer::typed`]. Cheap to clone.
///
/// ```no_run
/// # async fn run(kafka: ekafka::Ekafka) -> Result<(), Box<dyn std::error::Error>> {
/// use ekafka::codec::Json;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Order {
///     id: u64,
///     customer: String,
/// }
///
/// let orders = kafka
///     .producer("p1")?
///     .typed(Json)
///     .keyed_by(|order: &Order| order.customer.clone());
/// let report = orders
///     .write([Order { id: 1, customer: "c-7".into() }, Order { id: 2, customer: "c-9".into() }])
///     .await?;
/// report.into_result()?;
/// # Ok(())
/// # }
/// ```
pub struct TypedProducer<T, C> {
    producer: Producer,
    codec: Arc<C>,
    key: Option<Arc<KeyOf<T>>>,
}

impl<T, C> Clone for TypedProducer<T, C> {
    fn clone(&self) -> Self {
        TypedProducer {
            producer: self.producer.clone(),
            codec: Arc::clone(&self.codec),
            key: self.key.clone(),
        }
    }
}

impl<T, C> std::fmt::Debug for TypedProducer<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducer")
            .field("producer", &self.producer.name())
            .field("value", &std::any::type_name::<T>())
            .field("codec", &std::any::type_name::<C>())
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

impl Producer {
    /// This producer, writing values of `T` encoded by `codec`.
    pub fn typed<T, C: Encoder<T>>(&self, codec: C) -> TypedProducer<T, C> {
        TypedProducer {
            producer: self.clone(),
            codec: Arc::new(codec),
            key: None,
        }
    }
}

impl<T, C: Encoder<T>> TypedProducer<T, C> {
    /// Keys each value with `key(value)`: with the `hash` balancer, values
    /// of equal keys land on the same partition, as messages with that key
    /// written by hand would (Go ekafka's placement with `balancer = "hash"`).
    /// Without it, values are written without a key.
    #[must_use]
    pub fn keyed_by<K: Into<Vec<u8>>>(
        mut self,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> Self {
        self.key = Some(Arc::new(move |value: &T| key(value).into()));
        self
    }

    /// Encodes `values` and writes them in order, as [`Producer::write`]
    /// does, with each one's fate in the report.
    ///
    /// Every value is encoded before anything is written: a value the codec
    /// refuses fails the whole write as [`Error::Encode`] (naming its place
    /// in the write and the codec's reason), with nothing written.
    pub async fn write<V: Borrow<T>>(
        &self,
        values: impl IntoIterator<Item = V>,
    ) -> Result<WriteReport, Error> {
        let messages = values
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                self.message(value.borrow())
                    .map_err(|source| Error::Encode {
                        name: self.producer.name().to_string(),
                        index,
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.producer.write(messages).await
    }

    /// The message [`write`](Self::write) would write for `value`, keyed:
    /// to set a topic or a header of your own first, or to write it inside a
    /// [`Transaction`](super::Transaction).
    pub fn message(&self, value: &T) -> Result<Message, CodecError> {
        let mut message = self.codec.to_message(value)?;
        if let Some(key) = &self.key {
            message.key = Some(key(value));
        }
        Ok(message)
    }

    /// The producer the values are written through.
    #[must_use]
    pub fn producer(&self) -> &Producer {
        &self.producer
    }
}
