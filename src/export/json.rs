//! JSON: the whole report, pretty-printed, versioned (`format_version`).

/// `item` as pretty JSON with a final newline.
pub(crate) fn render<T: serde::Serialize + ?Sized>(item: &T) -> Vec<u8> {
    // Reports hold no maps with non-string keys and no non-finite floats
    // outside the fields that write them as strings: serialising cannot fail.
    let mut v = serde_json::to_vec_pretty(item).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}").into_bytes());
    v.push(b'\n');
    v
}

/// `json` (a pretty-printed object, as [`render`] writes it) with a first
/// key `units`: the unit the table and plots showed rates in.
pub(crate) fn with_units(json: &[u8], shown: crate::units::Rate) -> Vec<u8> {
    match json.strip_prefix(b"{\n") {
        Some(rest) => {
            let mut out = format!("{{\n  \"units\": \"{}\",\n", shown.label()).into_bytes();
            out.extend_from_slice(rest);
            out
        }
        None => json.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use crate::units::Rate;

    #[test]
    fn the_unit_shown_is_stated_first() {
        let v = serde_json::json!({"kind": "run", "best_gbps": 2.5});
        let text = super::with_units(&super::render(&v), Rate::Mib);
        let back: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(back["units"], "MiB/s");
        assert_eq!(back["best_gbps"], 2.5, "rates stay in GB/s");
        assert!(text.starts_with(b"{\n  \"units\": \"MiB/s\",\n"));
    }
}
