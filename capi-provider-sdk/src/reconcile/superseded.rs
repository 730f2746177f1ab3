//! Versions of an object this controller has already moved past, so a reconcile that sees one
//! in the cache waits for the newer version instead of doing the work (and the writes) again.
//!
//! After a write of ours, the informer cache may still hold the object as it was before the
//! write, or between our two writes (metadata/spec, then status). A reconcile that starts
//! meanwhile (the watch event of our first write, a Machine event, a requeue) would compute and
//! write again what is already written: in the provisioning benchmark that was 0.8 extra writes
//! per machine. The watch event of our last write is on its way and triggers the next
//! reconcile, so skipping loses nothing. Versions are compared for equality only: they stay
//! opaque, as the API conventions ask.

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries are dropped when a newer version is seen; this bound only guards against objects
/// deleted by someone else before their newer version reached us.
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct SupersededVersions(Mutex<HashMap<String, Vec<String>>>);

impl SupersededVersions {
    /// Whether `version` of the object `key` is one our own writes have already replaced.
    /// Seeing any other version forgets what was recorded for the object.
    pub(crate) fn is_superseded(&self, key: &str, version: Option<&str>) -> bool {
        let Some(version) = version else {
            return false;
        };
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(old) if old.iter().any(|v| v == version) => true,
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }

    /// Records that writes turned `before` into the versions in `written` (in order): every
    /// version but the last is superseded. Writes the server answered without a new version
    /// (no-ops) supersede nothing, or the object would wait for an event that never comes.
    pub(crate) fn record(&self, key: &str, before: Option<&str>, written: &[String]) {
        let Some((last, intermediate)) = written.split_last() else {
            return;
        };
        let old: Vec<String> = before
            .into_iter()
            .map(str::to_owned)
            .chain(intermediate.iter().cloned())
            .filter(|v| v != last)
            .collect();
        if old.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.to_owned(), old);
    }

    /// Forgets the object (it is gone, or about to be).
    pub(crate) fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_versions_before_and_between_our_writes_are_superseded() {
        let s = SupersededVersions::default();
        s.record("ns/a", Some("10"), &versions(&["11", "12"]));
        assert!(s.is_superseded("ns/a", Some("10")));
        assert!(s.is_superseded("ns/a", Some("11")));
        assert!(!s.is_superseded("ns/a", Some("12")));
        // Seeing the newest version forgot the entry.
        assert!(!s.is_superseded("ns/a", Some("10")));
    }

    #[test]
    fn a_write_answered_without_a_new_version_supersedes_nothing() {
        let s = SupersededVersions::default();
        s.record("ns/a", Some("10"), &versions(&["10"]));
        assert!(!s.is_superseded("ns/a", Some("10")));
        s.record("ns/a", Some("10"), &[]);
        assert!(!s.is_superseded("ns/a", Some("10")));
    }

    #[test]
    fn other_objects_and_unversioned_objects_are_never_superseded() {
        let s = SupersededVersions::default();
        s.record("ns/a", Some("10"), &versions(&["11"]));
        assert!(!s.is_superseded("ns/b", Some("10")));
        assert!(!s.is_superseded("ns/a", None));
        s.forget("ns/a");
        assert!(!s.is_superseded("ns/a", Some("10")));
    }
}
