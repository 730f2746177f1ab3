//! Finalizer bookkeeping on a copy of the object; the patch helper writes the change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// Adds the finalizer unless present (never while deleting: the API server refuses that).
pub(crate) fn add(meta: &mut ObjectMeta, finalizer: &str) {
    if meta.deletion_timestamp.is_none() && !has(meta, finalizer) {
        meta.finalizers
            .get_or_insert_with(Vec::new)
            .push(finalizer.to_owned());
    }
}

pub(crate) fn remove(meta: &mut ObjectMeta, finalizer: &str) {
    if let Some(list) = meta.finalizers.as_mut() {
        list.retain(|f| f != finalizer);
        if list.is_empty() {
            meta.finalizers = None;
        }
    }
}
