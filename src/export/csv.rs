//! CSV: the summary rows, raw values in base units (seconds, GB/s), one
//! header line.

use super::Table;

/// Quotes a field that needs it (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The table's CSV columns and rows.
pub(crate) fn render(table: &Table) -> String {
    let keep: Vec<usize> = (0..table.columns.len()).filter(|&i| table.columns[i].csv.is_some()).collect();
    let mut out = keep.iter().filter_map(|&i| table.columns[i].csv).collect::<Vec<_>>().join(",");
    out.push('\n');
    for row in &table.rows {
        out += &keep.iter().map(|&i| field(&row[i].raw)).collect::<Vec<_>>().join(",");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Cell, Table, both, csv_only};

    #[test]
    fn fields_are_quoted_when_they_need_it() {
        let table = Table {
            columns: vec![both("a", "A", false), csv_only("b")],
            rows: vec![vec![Cell::text("x, \"y\""), Cell::two("1.5", "1.50 s")]],
            notes: vec![],
        };
        assert_eq!(super::render(&table), "a,b\n\"x, \"\"y\"\"\",1.5\n");
    }
}
