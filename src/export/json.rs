//! JSON: the whole report, pretty-printed, versioned (`format_version`).

/// `item` as pretty JSON with a final newline.
pub(crate) fn render<T: serde::Serialize + ?Sized>(item: &T) -> Vec<u8> {
    // Reports hold no maps with non-string keys and no non-finite floats
    // outside the fields that write them as strings: serialising cannot fail.
    let mut v = serde_json::to_vec_pretty(item).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}").into_bytes());
    v.push(b'\n');
    v
}
