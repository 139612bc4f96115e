//! What librdkafka carries with a produced message to its delivery report: a
//! tag that finds the write the message belongs to, and the message's index
//! in it, without an allocation per message.
//!
//! A write (`T`, the producer's tracker) keeps [`Slots`]: one entry per
//! message, each holding the write's own address. A message's [`SlotTag`] is
//! the address of its entry, which gives both the write and, by its position,
//! the index; the tag owns one strong reference on the write's `Arc`, given
//! back when the tag is dropped (after the report, or when librdkafka refused
//! the message).

use std::ffi::c_void;
use std::sync::{Arc, Weak};

use rdkafka::util::IntoOpaque;

/// A write's entries, one per message, each holding the write's address.
pub(crate) struct Slots<T>(Box<[*const T]>);

// SAFETY: the entries only hold the owner's address, never dereferenced but
// through a `SlotTag`, which keeps the owner alive; the owner is Send and Sync.
unsafe impl<T: Send + Sync> Send for Slots<T> {}
unsafe impl<T: Send + Sync> Sync for Slots<T> {}

impl<T> Slots<T> {
    /// `count` entries for the write `owner` is about to be (from
    /// `Arc::new_cyclic`).
    pub(crate) fn new(owner: &Weak<T>, count: usize) -> Self {
        Slots(vec![owner.as_ptr(); count].into_boxed_slice())
    }
}

/// A write that keeps slots for its messages' tags.
pub(crate) trait HasSlots: Sized + Send + Sync {
    fn slots(&self) -> &Slots<Self>;
}

/// A message's tag: the address of its entry in its write's slots, owning a
/// strong reference on the write; or none (null), for a message whose report
/// goes to no write.
pub(crate) struct SlotTag<T: HasSlots>(*const *const T);

// SAFETY: the pointer is null or an entry of a write this tag keeps alive;
// writes are Send and Sync.
unsafe impl<T: HasSlots> Send for SlotTag<T> {}
unsafe impl<T: HasSlots> Sync for SlotTag<T> {}

impl<T: HasSlots> SlotTag<T> {
    /// The tag of a message whose report goes to no write.
    pub(crate) const NONE: Self = SlotTag(std::ptr::null());

    /// The tag of message `index` of `owner`.
    ///
    /// # Panics
    /// When `index` is not a message of the write (a bug in the caller).
    pub(crate) fn new(owner: &Arc<T>, index: usize) -> Self {
        let entry: *const *const T = &owner.slots().0[index];
        // SAFETY: the pointer comes from a live Arc; the reference taken here
        // is given back by Drop.
        unsafe { Arc::increment_strong_count(Arc::as_ptr(owner)) };
        SlotTag(entry)
    }

    /// The write and the message's index in it; `None` for [`NONE`](Self::NONE).
    pub(crate) fn slot(&self) -> Option<(&T, usize)> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: a non-null tag points at an entry of a write it keeps
        // alive; the entry holds that write's address.
        unsafe {
            let owner = &**self.0;
            let index = self.0.offset_from(owner.slots().0.as_ptr()) as usize;
            Some((owner, index))
        }
    }

    /// The tag a pointer from [`into_ptr`](IntoOpaque::into_ptr) stands for,
    /// taking back the reference it carried.
    ///
    /// # Safety
    /// `pointer` must come from `into_ptr` of a tag of this type, and be taken
    /// back once.
    pub(super) unsafe fn take_back(pointer: *mut c_void) -> Self {
        SlotTag(pointer as *const *const T)
    }
}

impl<T: HasSlots> Drop for SlotTag<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: gives back the reference `new` took.
            unsafe { Arc::decrement_strong_count(*self.0) };
        }
    }
}

impl<T: HasSlots> IntoOpaque for SlotTag<T> {
    fn into_ptr(self) -> *mut c_void {
        let pointer = self.0 as *mut c_void;
        // The reference travels with the pointer, through librdkafka.
        std::mem::forget(self);
        pointer
    }

    unsafe fn from_ptr(pointer: *mut c_void) -> Self {
        // SAFETY: per the trait's contract.
        unsafe { Self::take_back(pointer) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Write {
        slots: Slots<Write>,
    }

    impl HasSlots for Write {
        fn slots(&self) -> &Slots<Self> {
            &self.slots
        }
    }

    fn write(messages: usize) -> Arc<Write> {
        Arc::new_cyclic(|this| Write {
            slots: Slots::new(this, messages),
        })
    }

    #[test]
    fn a_tag_through_librdkafka_finds_its_write_and_index_and_gives_its_reference_back() {
        let write = write(3);
        let tags: Vec<_> = (0..3).map(|i| SlotTag::new(&write, i)).collect();
        assert_eq!(Arc::strong_count(&write), 4);
        // As librdkafka carries them: opaque pointers, taken back in any order.
        let pointers: Vec<_> = tags.into_iter().map(IntoOpaque::into_ptr).collect();
        let tags: Vec<_> = pointers
            .into_iter()
            .rev()
            .map(|p| unsafe { SlotTag::<Write>::take_back(p) })
            .collect();
        for (position, tag) in tags.iter().enumerate() {
            let (found, index) = tag.slot().expect("a write's tag");
            assert!(std::ptr::eq(found, Arc::as_ptr(&write)));
            assert_eq!(index, 2 - position);
        }
        drop(tags);
        assert_eq!(Arc::strong_count(&write), 1);
    }

    #[test]
    fn the_none_tag_has_no_slot() {
        let tag = unsafe { SlotTag::<Write>::take_back(SlotTag::<Write>::NONE.into_ptr()) };
        assert!(tag.slot().is_none());
    }
}
