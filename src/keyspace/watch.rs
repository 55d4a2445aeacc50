//! WATCH: optimistic locking for MULTI/EXEC.
//!
//! Each watching client owns a [`Watcher`] flag. The table maps (database, key) to the
//! flags of the clients watching it; a write to a key ([`WatchTable::touch`]), or a flush
//! of a database ([`WatchTable::touch_db`]) raises their flags, and EXEC refuses to run
//! (null reply) when its client's flag is up, as Redis's `touchWatchedKey` does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::sync::LockExt;

/// One client's "a watched key changed" flag.
pub type Watcher = Arc<AtomicBool>;

#[derive(Default)]
pub struct WatchTable {
    keys: Mutex<HashMap<(usize, Bytes), Vec<Watcher>>>,
    /// Keys in `keys`: lets every write skip the lock (and the lookup) while nobody
    /// watches anything, the common case.
    watched: AtomicUsize,
}

impl WatchTable {
    pub fn watch(&self, db: usize, key: Bytes, w: &Watcher) {
        let mut keys = self.keys.locked();
        let list = keys.entry((db, key)).or_default();
        if !list.iter().any(|x| Arc::ptr_eq(x, w)) {
            list.push(w.clone());
        }
        self.watched.store(keys.len(), Ordering::Release);
    }

    /// Forgets `w` on the given keys (UNWATCH, EXEC, DISCARD, disconnect).
    pub fn unwatch(&self, keys: &[(usize, Bytes)], w: &Watcher) {
        let mut table = self.keys.locked();
        for k in keys {
            if let Some(list) = table.get_mut(k) {
                list.retain(|x| !Arc::ptr_eq(x, w));
                if list.is_empty() {
                    table.remove(k);
                }
            }
        }
        self.watched.store(table.len(), Ordering::Release);
    }

    /// A write changed `key` in `db`: every client watching it fails its next EXEC.
    pub fn touch(&self, db: usize, key: &[u8]) {
        if self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        let table = self.keys.locked();
        if let Some(list) = table.get(&(db, Bytes::copy_from_slice(key))) {
            for w in list {
                w.store(true, Ordering::Release);
            }
        }
    }

    /// Every watched key of `db` (`None`: of every database) changed.
    pub fn touch_db(&self, db: Option<usize>) {
        if self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        let table = self.keys.locked();
        for ((d, _), list) in table.iter() {
            if db.is_none_or(|db| db == *d) {
                for w in list {
                    w.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Keys watched by anyone (INFO `watching_clients`-style figures, tests).
    pub fn len(&self) -> usize {
        self.keys.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_raises_only_the_watchers_of_that_key() {
        let t = WatchTable::default();
        let (a, b): (Watcher, Watcher) = Default::default();
        t.watch(0, Bytes::from_static(b"k"), &a);
        t.watch(1, Bytes::from_static(b"k"), &b);
        t.touch(0, b"k");
        assert!(a.load(Ordering::Acquire));
        assert!(!b.load(Ordering::Acquire));
        t.touch_db(Some(1));
        assert!(b.load(Ordering::Acquire));
        t.unwatch(&[(0, Bytes::from_static(b"k")), (1, Bytes::from_static(b"k"))], &a);
        assert_eq!(t.len(), 1);
        t.unwatch(&[(1, Bytes::from_static(b"k"))], &b);
        assert!(t.is_empty());
    }
}
