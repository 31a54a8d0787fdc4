//! What the plugins print besides tables ([`crate::cli::Table`], kubectl's plain columns): the `-o` formats, and
//! lists streamed as JSON or YAML one item at a time (memory stays flat however many items a scan reports).

use std::io::{self, Write};

use serde::Serialize;

/// Output formats (`-o`): plain columns as kubectl's tables, JSON, or YAML. (The variants have no doc
/// comments: clap would list them in `--help`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[allow(missing_docs)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Streams a list of items, then a summary: as JSON `{"items":[ ... ],"summary":{...}}` (one item per line, the
/// summary pretty-printed) or as YAML `items:` (a sequence, one entry per item) and `summary:`.
pub struct List<'a, W: Write> {
    out: &'a mut W,
    yaml: bool,
    any: bool,
}

/// `v` as a YAML document (no `---`).
pub fn yaml_of(v: &impl Serialize) -> io::Result<String> {
    serde_saphyr::to_string(v).map_err(|e| io::Error::other(e.to_string()))
}

impl<'a, W: Write> List<'a, W> {
    /// A JSON list: write the opening.
    pub fn json(out: &'a mut W) -> io::Result<Self> {
        out.write_all(b"{\"items\":[")?;
        Ok(Self {
            out,
            yaml: false,
            any: false,
        })
    }

    /// A YAML list: write the opening.
    pub fn yaml(out: &'a mut W) -> io::Result<Self> {
        out.write_all(b"items:\n")?;
        Ok(Self {
            out,
            yaml: true,
            any: false,
        })
    }

    /// Write one item.
    pub fn item(&mut self, item: &impl Serialize) -> io::Result<()> {
        let first = !self.any;
        self.any = true;
        if !self.yaml {
            self.out.write_all(if first { b"\n" } else { b",\n" })?;
            return serde_json::to_writer(&mut *self.out, item).map_err(io::Error::other);
        }
        for (i, line) in yaml_of(item)?.lines().enumerate() {
            self.out.write_all(if i == 0 { b"- " } else { b"  " })?;
            self.out.write_all(line.as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Close the list and write the summary.
    pub fn finish(self, summary: &impl Serialize) -> io::Result<()> {
        if !self.yaml {
            self.out.write_all(b"\n],\"summary\":")?;
            serde_json::to_writer_pretty(&mut *self.out, summary).map_err(io::Error::other)?;
            return self.out.write_all(b"}\n");
        }
        if !self.any {
            // `items:` alone would be null; make it an empty list.
            self.out.write_all(b"  []\n")?;
        }
        self.out.write_all(b"summary:\n")?;
        for line in yaml_of(summary)?.lines() {
            writeln!(self.out, "  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lists_stream_items_then_the_summary() {
        let json = text(|o| {
            let mut l = List::json(o)?;
            l.item(&serde_json::json!({"a": 1}))?;
            l.item(&serde_json::json!({"a": 2}))?;
            l.finish(&serde_json::json!({"total": 2}))
        });
        assert_eq!(
            json,
            "{\"items\":[\n{\"a\":1},\n{\"a\":2}\n],\"summary\":{\n  \"total\": 2\n}}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["items"][1]["a"], 2);

        let yaml = text(|o| {
            let mut l = List::yaml(o)?;
            l.item(&serde_json::json!({"a": 1, "b": "x"}))?;
            l.finish(&serde_json::json!({"total": 1}))
        });
        assert_eq!(yaml, "items:\n- a: 1\n  b: x\nsummary:\n  total: 1\n");
        let empty = text(|o| List::yaml(o)?.finish(&serde_json::json!({"total": 0})));
        assert_eq!(empty, "items:\n  []\nsummary:\n  total: 0\n");
    }
}
