//! Shared data and shared queues: the key-value store and queues that every VM of one vm_id
//! sees in Envoy. They live outside any one instance, so a reload with a new configuration
//! keeps what the old instance stored, as Envoy keeps it across plugin updates.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::abi::Status;

/// The shared key-value store, with Envoy's compare-and-swap rules.
#[derive(Debug, Clone, Default)]
pub struct SharedData {
    entries: BTreeMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    /// The value and its CAS token.
    pub fn get(&self, key: &str) -> Option<(&[u8], u32)> {
        self.entries
            .get(key)
            .map(|(value, cas)| (value.as_slice(), *cas))
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Stores `value` unless `cas` is non-zero and differs from the key's current token. A
    /// non-zero `cas` for a key that does not exist yet is accepted, as Envoy accepts it.
    pub fn set(&mut self, key: &str, value: Vec<u8>, cas: u32) -> Status {
        if let Some((_, current)) = self.entries.get(key) {
            if cas != 0 && cas != *current {
                return Status::CasMismatch;
            }
        }
        // Zero means "no CAS" on the wire, so a token must never be zero.
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.entries.insert(key.to_string(), (value, self.next_cas));
        Status::Ok
    }
}

/// The shared data one host holds, which other hosts may be given too: harnesses that hold
/// the same store act as the worker VMs of one proxy, each running its own instance.
#[derive(Debug, Clone, Default)]
pub struct SharedStore(Rc<RefCell<SharedData>>);

impl SharedStore {
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0
            .borrow()
            .get(key)
            .map(|(value, cas)| (value.to_vec(), cas))
    }

    pub fn set(&self, key: &str, value: Vec<u8>, cas: u32) -> Status {
        self.0.borrow_mut().set(key, value, cas)
    }

    /// A copy of the data as it stands.
    pub fn snapshot(&self) -> SharedData {
        self.0.borrow().clone()
    }
}

/// Named queues registered by a module and resolvable by name.
#[derive(Debug, Clone, Default)]
pub struct SharedQueues {
    by_name: BTreeMap<String, u32>,
    queues: BTreeMap<u32, VecDeque<Vec<u8>>>,
}

impl SharedQueues {
    pub fn register(&mut self, name: &str) -> u32 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = u32::try_from(self.by_name.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        self.by_name.insert(name.to_string(), id);
        self.queues.insert(id, VecDeque::new());
        id
    }

    pub fn resolve(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn enqueue(&mut self, id: u32, value: Vec<u8>) -> Status {
        match self.queues.get_mut(&id) {
            Some(queue) => {
                queue.push_back(value);
                Status::Ok
            }
            None => Status::NotFound,
        }
    }

    pub fn dequeue(&mut self, id: u32) -> Result<Vec<u8>, Status> {
        let queue = self.queues.get_mut(&id).ok_or(Status::NotFound)?;
        queue.pop_front().ok_or(Status::Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_with_a_stale_cas_is_refused_and_the_value_kept() {
        let mut data = SharedData::default();
        assert_eq!(data.set("k", b"1".to_vec(), 0), Status::Ok);
        let (_, first) = data.get("k").unwrap();
        assert_eq!(data.set("k", b"2".to_vec(), first), Status::Ok);
        assert_eq!(data.set("k", b"3".to_vec(), first), Status::CasMismatch);
        assert_eq!(data.get("k").unwrap().0, b"2");
    }
}
