//! kubectl's plain table: a header row, columns left-aligned and kept apart by spaces, no borders, no leading or
//! trailing blanks. kubectl writes its tables through Go's `text/tabwriter` with minimum cell width 6 and padding
//! 3 (cli-runtime `pkg/printers/tabwriter.go` `GetNewTabWriter`): every column but the last is as wide as its
//! widest cell plus 3, and at least 6; the last is not padded.

use std::fmt;

/// Minimum width of a padded cell (cli-runtime `tabwriterMinWidth`).
const MIN_WIDTH: usize = 6;
/// Blanks after the widest cell of a column (cli-runtime `tabwriterPadding`).
const PADDING: usize = 3;

/// A table printed the way `kubectl get` prints one. `Display` writes it without a final newline.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header` (kubectl's headers are upper case: `NAME`, `STATUS`).
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let mut t = Self::default();
        t.row(header);
        t
    }

    /// A table of rows only (name/value listings).
    pub fn without_header() -> Self {
        Self::default()
    }

    /// Appends a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Rows added after the header.
    pub fn len(&self) -> usize {
        self.rows.len().saturating_sub(1)
    }

    /// Whether no row follows the header.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the table, each line ending in `\n`.
    pub fn write(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "{self}")
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let widest = self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0);
                (widest + PADDING).max(MIN_WIDTH)
            })
            .collect();
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            f.write_str(line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_columns() {
        let mut t = Table::new(["NAME", "READY", "STATUS"]);
        t.row(["etcd-node1", "1/1", "Running"]);
        t.row(["kube-apiserver-node1", "0/1", ""]);
        assert_eq!(
            t.to_string(),
            "NAME                   READY   STATUS\n\
             etcd-node1             1/1     Running\n\
             kube-apiserver-node1   0/1"
        );
    }

    #[test]
    fn narrow_columns_get_the_minimum_width() {
        let mut t = Table::without_header();
        t.row(["a", "b", "c"]);
        assert_eq!(t.to_string(), "a     b     c");
        assert_eq!(Table::without_header().to_string(), "");
    }
}
