//! The in-flight window of one partition: several messages are handled at once, but messages
//! with the same key (one receipt) strictly one after another, and the offset reported as done is
//! always the end of the contiguous run of finished messages, so a crash never skips one.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// Bookkeeping for the messages of one partition between receipt and completion.
#[derive(Debug)]
pub(crate) struct Window<T> {
    /// Offsets received and not yet finished (running or waiting behind their key).
    outstanding: BTreeSet<i64>,
    first_seen: Option<i64>,
    highest_seen: Option<i64>,
    reported: Option<i64>,
    /// Keys with a message running; the messages waiting behind it, in offset order.
    busy: HashMap<Vec<u8>, VecDeque<(i64, T)>>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Self {
            outstanding: BTreeSet::new(),
            first_seen: None,
            highest_seen: None,
            reported: None,
            busy: HashMap::new(),
        }
    }
}

impl<T> Window<T> {
    /// Messages received and not finished.
    pub(crate) fn len(&self) -> usize {
        self.outstanding.len()
    }

    /// Takes a message in. Returns it if it may start now; otherwise it waits behind the
    /// running message with the same key and is returned by a later [`Window::finish`].
    pub(crate) fn admit(&mut self, offset: i64, key: Option<&[u8]>, message: T) -> Option<T> {
        self.outstanding.insert(offset);
        self.first_seen = Some(self.first_seen.map_or(offset, |f| f.min(offset)));
        self.highest_seen = Some(self.highest_seen.map_or(offset, |h| h.max(offset)));
        let Some(key) = key else { return Some(message) };
        match self.busy.get_mut(key) {
            Some(waiting) => {
                waiting.push_back((offset, message));
                None
            }
            None => {
                self.busy.insert(key.to_vec(), VecDeque::new());
                Some(message)
            }
        }
    }

    /// Marks a message finished. Returns the next message of the same key to start, if any, and
    /// the new last offset below which everything is finished, if it moved.
    pub(crate) fn finish(&mut self, offset: i64, key: Option<&[u8]>) -> (Option<T>, Option<i64>) {
        self.outstanding.remove(&offset);
        let next = key.and_then(|key| {
            let waiting = self.busy.get_mut(key)?;
            match waiting.pop_front() {
                Some((_, message)) => Some(message),
                None => {
                    self.busy.remove(key);
                    None
                }
            }
        });
        let done_up_to = match self.outstanding.first() {
            Some(&lowest) => lowest - 1,
            None => self.highest_seen.unwrap_or(offset),
        };
        let moved = self.first_seen.is_some_and(|first| done_up_to >= first)
            && self.reported.is_none_or(|reported| done_up_to > reported);
        if moved {
            self.reported = Some(done_up_to);
        }
        (next, moved.then_some(done_up_to))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_reported_offset_waits_for_the_slowest() {
        let mut w = Window::default();
        for offset in 10..13 {
            assert_eq!(
                w.admit(offset, Some(format!("k{offset}").as_bytes()), offset),
                Some(offset)
            );
        }
        assert_eq!(
            w.finish(12, Some(b"k12")),
            (None, None),
            "10 and 11 still running"
        );
        assert_eq!(w.finish(10, Some(b"k10")), (None, Some(10)));
        assert_eq!(w.finish(11, Some(b"k11")), (None, Some(12)));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn same_key_messages_run_one_after_another() {
        let mut w = Window::default();
        assert_eq!(w.admit(1, Some(b"a"), "a1"), Some("a1"));
        assert_eq!(w.admit(2, Some(b"a"), "a2"), None);
        assert_eq!(w.admit(3, Some(b"b"), "b3"), Some("b3"));
        assert_eq!(w.admit(4, Some(b"a"), "a4"), None);
        assert_eq!(w.finish(3, Some(b"b")), (None, None));
        assert_eq!(w.finish(1, Some(b"a")), (Some("a2"), Some(1)));
        assert_eq!(w.finish(2, Some(b"a")), (Some("a4"), Some(3)));
        assert_eq!(w.finish(4, Some(b"a")), (None, Some(4)));
        // The key is free again.
        assert_eq!(w.admit(5, Some(b"a"), "a5"), Some("a5"));
    }

    #[test]
    fn keyless_messages_run_freely() {
        let mut w = Window::default();
        assert_eq!(w.admit(7, None, 7), Some(7));
        assert_eq!(w.admit(8, None, 8), Some(8));
        assert_eq!(w.finish(8, None), (None, None));
        assert_eq!(w.finish(7, None), (None, Some(8)));
    }

    proptest! {
        /// Whatever the keys and the completion order, the reported offsets only grow, never
        /// pass an unfinished message, and end at the last offset; same-key messages start in
        /// offset order.
        #[test]
        fn reports_are_safe_and_complete(keys in prop::collection::vec(0u8..4, 1..40), order in any::<u64>()) {
            let mut w: Window<i64> = Window::default();
            let mut running = Vec::new();
            let mut started_per_key: HashMap<u8, Vec<i64>> = HashMap::new();
            let mut finished = BTreeSet::new();
            let mut last_report = -1;
            let mut rng = order;
            for (offset, key) in keys.iter().enumerate() {
                let offset = offset as i64;
                if let Some(m) = w.admit(offset, Some(&[*key]), offset) {
                    started_per_key.entry(*key).or_default().push(m);
                    running.push((m, *key));
                }
            }
            while !running.is_empty() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let (offset, key) = running.remove((rng >> 33) as usize % running.len());
                finished.insert(offset);
                let (next, report) = w.finish(offset, Some(&[key]));
                if let Some(n) = next {
                    started_per_key.entry(key).or_default().push(n);
                    running.push((n, key));
                }
                if let Some(r) = report {
                    prop_assert!(r > last_report);
                    prop_assert!((0..=r).all(|o| finished.contains(&o)), "reported {r} past an unfinished message");
                    last_report = r;
                }
            }
            prop_assert_eq!(last_report, keys.len() as i64 - 1);
            for started in started_per_key.values() {
                prop_assert!(started.windows(2).all(|p| p[0] < p[1]), "same key out of order: {started:?}");
            }
        }
    }
}
