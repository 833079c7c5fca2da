//! Markdown: the summary rows as a table for people, then any notes.

use super::Table;

/// The table's Markdown columns and rows, then its notes.
pub(crate) fn render(table: &Table) -> String {
    let keep: Vec<usize> = (0..table.columns.len()).filter(|&i| table.columns[i].markdown.is_some()).collect();
    let cell = |s: &str| s.replace('|', "/");
    let mut out = format!(
        "| {} |\n|{}|\n",
        keep.iter().filter_map(|&i| table.columns[i].markdown).collect::<Vec<_>>().join(" | "),
        keep.iter().map(|&i| if table.columns[i].numeric { "---:" } else { "---" }).collect::<Vec<_>>().join("|")
    );
    for row in &table.rows {
        out += &format!("| {} |\n", keep.iter().map(|&i| cell(&row[i].shown)).collect::<Vec<_>>().join(" | "));
    }
    for note in &table.notes {
        out += &format!("\n{note}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Cell, Table, both, csv_only};

    #[test]
    fn numbers_align_right_and_pipes_are_escaped() {
        let table = Table {
            columns: vec![both("a", "A", false), both("n", "N", true), csv_only("raw")],
            rows: vec![vec![Cell::text("x|y"), Cell::two("2", "2.0"), Cell::text("z")]],
            notes: vec!["So: yes.".into()],
        };
        assert_eq!(super::render(&table), "| A | N |\n|---|---:|\n| x/y | 2.0 |\n\nSo: yes.\n");
    }
}
