//! A line-level view of a block-style YAML document: just enough structure (mapping keys, sequence
//! items, their line extents and columns) to locate the nodes the editor changes, so that every
//! other byte can be left alone. The semantic truth always comes from the real YAML parser; this
//! scanner only finds positions, and every edit is re-checked semantically afterwards.

/// One physical line: its text without the line ending, and the ending itself (`"\n"`, `"\r\n"`,
/// or `""` for a last line without a final newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: String,
    pub eol: String,
}

/// Splits `text` into lines, keeping each line's ending.
pub(crate) fn split_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                let (line, eol) = if i > 0 && rest.as_bytes()[i - 1] == b'\r' {
                    (&rest[..i - 1], "\r\n")
                } else {
                    (&rest[..i], "\n")
                };
                out.push(Line {
                    text: line.to_string(),
                    eol: eol.to_string(),
                });
                rest = &rest[i + 1..];
            }
            None => {
                out.push(Line {
                    text: rest.to_string(),
                    eol: String::new(),
                });
                rest = "";
            }
        }
    }
    out
}

/// Joins lines back into the document text.
pub(crate) fn join_lines(lines: &[Line]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.text);
        s.push_str(&l.eol);
    }
    s
}

/// The line ending the document uses (CRLF when its first line ends with one).
pub(crate) fn document_eol(lines: &[Line]) -> &'static str {
    match lines.iter().find(|l| !l.eol.is_empty()) {
        Some(l) if l.eol == "\r\n" => "\r\n",
        _ => "\n",
    }
}

/// Number of leading spaces.
pub(crate) fn indent(text: &str) -> usize {
    text.bytes().take_while(|b| *b == b' ').count()
}

/// A line that carries YAML content (not blank, not only a comment, not a document marker).
pub(crate) fn is_content(text: &str) -> bool {
    let t = text.trim();
    !(t.is_empty() || t.starts_with('#') || t == "---" || t == "...")
}

/// Byte index where the content of `text` ends: before an end-of-line comment (a `#` preceded by
/// whitespace, outside quotes) and before trailing whitespace.
pub(crate) fn content_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    let mut prev_ws = true;
    let mut end = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == q {
                    if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        quote = None;
                    }
                } else if q == b'"' && b == b'\\' {
                    i += 1;
                }
                end = i + 1;
                prev_ws = false;
            }
            None => {
                if b == b'#' && prev_ws {
                    break;
                }
                if (b == b'"' || b == b'\'') && starts_scalar(bytes, i) {
                    quote = Some(b);
                }
                if b != b' ' && b != b'\t' {
                    end = i + 1;
                }
                prev_ws = b == b' ' || b == b'\t';
            }
        }
        i += 1;
    }
    end.min(text.len())
}

/// A quote at `i` opens a quoted scalar when it starts the line content, or follows `[`, `{`,
/// `,`, or one of `-`, `:`, `?` plus at least one space.
fn starts_scalar(bytes: &[u8], i: usize) -> bool {
    let mut j = i;
    while j > 0 && bytes[j - 1] == b' ' {
        j -= 1;
    }
    if j == 0 {
        return true;
    }
    match bytes[j - 1] {
        b'[' | b'{' | b',' => true,
        b'-' | b':' | b'?' => j < i,
        _ => false,
    }
}

/// Whether the content at column `col` of `text` is a sequence entry (`-` followed by a space or
/// the end of the line).
pub(crate) fn is_dash_at(text: &str, col: usize) -> bool {
    let b = text.as_bytes();
    b.get(col) == Some(&b'-') && matches!(b.get(col + 1), None | Some(b' ') | Some(b'\t'))
}

/// A mapping key found at a column of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPos {
    pub key: String,
    pub line: usize,
    pub col: usize,
    /// Text of the value on the same line (after `:`, before any comment), trimmed.
    pub inline: String,
}

/// Parses a `key: value` at column `col` of `text`.
pub(crate) fn key_at(text: &str, col: usize) -> Option<(String, String)> {
    let end = content_end(text);
    if col >= end {
        return None;
    }
    let s = &text[col..end];
    let (key, rest) = if s.starts_with('"') || s.starts_with('\'') {
        let q = s.as_bytes()[0] as char;
        let close = s[1..].find(q)? + 1;
        (s[1..close].to_string(), &s[close + 1..])
    } else {
        let b = s.as_bytes();
        let i = (0..b.len())
            .find(|&i| b[i] == b':' && matches!(b.get(i + 1), None | Some(b' ') | Some(b'\t')))?;
        let key = s[..i].trim_end();
        if key.is_empty()
            || key == "-"
            || key.starts_with("- ")
            || key.starts_with(['[', '{', '#', '&', '*', '!', '|', '>', '%', '@', '`'])
        {
            return None;
        }
        (key.to_string(), &s[i..])
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(':')?;
    Some((key, rest.trim().to_string()))
}

/// A block mapping: its first key is at (`first_line`, `col`); further keys are content lines
/// in `first_line+1..end` whose indentation is `col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapRegion {
    pub first_line: usize,
    pub col: usize,
    pub end: usize,
}

/// A block sequence item: dash at (`line`, `col`), its lines end (exclusive) at `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub line: usize,
    pub col: usize,
    pub end: usize,
}

/// The top-level mapping of the document.
pub(crate) fn root_region(lines: &[Line]) -> Option<MapRegion> {
    let first = lines.iter().position(|l| is_content(&l.text))?;
    Some(MapRegion {
        first_line: first,
        col: indent(&lines[first].text),
        end: lines.len(),
    })
}

/// Keys of a mapping region, in document order.
pub(crate) fn map_keys(lines: &[Line], r: MapRegion) -> Vec<KeyPos> {
    let mut keys = Vec::new();
    for (i, l) in lines.iter().enumerate().take(r.end).skip(r.first_line) {
        let t = &l.text;
        if !is_content(t) {
            continue;
        }
        let ok = if i == r.first_line {
            t.len() > r.col
        } else {
            indent(t) == r.col && !is_dash_at(t, r.col)
        };
        if !ok {
            continue;
        }
        if let Some((key, inline)) = key_at(t, r.col) {
            keys.push(KeyPos {
                key,
                line: i,
                col: r.col,
                inline,
            });
        }
    }
    keys
}

/// Finds `key` in a mapping region.
pub(crate) fn find_key(lines: &[Line], r: MapRegion, key: &str) -> Option<KeyPos> {
    map_keys(lines, r).into_iter().find(|k| k.key == key)
}

/// Exclusive end of the lines that belong to a key's value (the line after its last content
/// line), bounded by `limit`.
pub(crate) fn key_end(lines: &[Line], k: &KeyPos, limit: usize) -> usize {
    let mut last = k.line;
    for (j, l) in lines
        .iter()
        .enumerate()
        .take(limit.min(lines.len()))
        .skip(k.line + 1)
    {
        let t = &l.text;
        if !is_content(t) {
            continue;
        }
        let ind = indent(t);
        if ind > k.col || (ind == k.col && is_dash_at(t, ind) && k.inline.is_empty()) {
            last = j;
        } else {
            break;
        }
    }
    last + 1
}

/// The block mapping that is the value of key `k` (nested on the following lines).
pub(crate) fn value_map(lines: &[Line], k: &KeyPos, limit: usize) -> Option<MapRegion> {
    if !k.inline.is_empty() {
        return None;
    }
    let end = key_end(lines, k, limit);
    let first = (k.line + 1..end).find(|&j| is_content(&lines[j].text))?;
    Some(MapRegion {
        first_line: first,
        col: indent(&lines[first].text),
        end,
    })
}

/// The block sequence items that are the value of key `k`. `None` when the value is not a block
/// sequence (empty, flow style or a scalar).
pub(crate) fn value_seq(lines: &[Line], k: &KeyPos, limit: usize) -> Option<Vec<Item>> {
    if !k.inline.is_empty() {
        return None;
    }
    let end = key_end(lines, k, limit);
    let first = (k.line + 1..end).find(|&j| is_content(&lines[j].text))?;
    let col = indent(&lines[first].text);
    if !is_dash_at(&lines[first].text, col) {
        return None;
    }
    let starts: Vec<usize> = (first..end)
        .filter(|&j| {
            is_content(&lines[j].text)
                && indent(&lines[j].text) == col
                && is_dash_at(&lines[j].text, col)
        })
        .collect();
    let mut items = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let bound = starts.get(n + 1).copied().unwrap_or(end);
        let last = (s + 1..bound)
            .rev()
            .find(|&j| is_content(&lines[j].text))
            .unwrap_or(s);
        items.push(Item {
            line: s,
            col,
            end: last + 1,
        });
    }
    Some(items)
}

/// The mapping inside a sequence item (`- key: v` or `-` followed by an indented mapping).
pub(crate) fn item_map(lines: &[Line], it: Item) -> Option<MapRegion> {
    let t = &lines[it.line].text;
    let after = it.col + 1;
    let content = content_end(t);
    if after < content {
        let col = after + indent(&t[after..]);
        key_at(t, col)?;
        Some(MapRegion {
            first_line: it.line,
            col,
            end: it.end,
        })
    } else {
        let first = (it.line + 1..it.end).find(|&j| is_content(&lines[j].text))?;
        Some(MapRegion {
            first_line: first,
            col: indent(&lines[first].text),
            end: it.end,
        })
    }
}

/// Byte span of the scalar of a single-line sequence item (`- value  # comment`).
pub(crate) fn item_scalar_span(lines: &[Line], it: Item) -> Option<(usize, usize)> {
    let t = &lines[it.line].text;
    let after = it.col + 1;
    let start = after + indent(&t[after.min(t.len())..]);
    let end = content_end(t);
    if start >= end {
        return None;
    }
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_found_outside_quotes_only() {
        assert_eq!(content_end("- --a=b   # c"), 7);
        assert_eq!(content_end("- '--a=#b' # c"), 10);
        assert_eq!(content_end("- \"x # y\""), 9);
        assert_eq!(content_end("- a#b"), 5);
        assert_eq!(content_end("# only"), 0);
        assert_eq!(content_end("key: v   "), 6);
    }

    #[test]
    fn keys_and_values() {
        assert_eq!(
            key_at("  name: x # c", 2),
            Some(("name".into(), "x".into()))
        );
        assert_eq!(
            key_at("- command:", 2),
            Some(("command".into(), String::new()))
        );
        assert_eq!(key_at("  \"a b\": 1", 2), Some(("a b".into(), "1".into())));
        assert_eq!(key_at("- --flag=x", 2), None);
        assert_eq!(key_at("- http://x", 2), None);
    }

    #[test]
    fn lines_round_trip() {
        for s in ["a\nb", "a\r\nb\r\n", "", "\n\n", "x"] {
            assert_eq!(join_lines(&split_lines(s)), s);
        }
    }

    #[test]
    fn sequences_indented_and_not() {
        for doc in ["k:\n- a\n- b\nz: 1\n", "k:\n  - a\n  # c\n  - b\nz: 1\n"] {
            let lines = split_lines(doc);
            let r = root_region(&lines).unwrap();
            let k = find_key(&lines, r, "k").unwrap();
            let items = value_seq(&lines, &k, r.end).unwrap();
            assert_eq!(items.len(), 2, "{doc}");
            let keys: Vec<_> = map_keys(&lines, r).into_iter().map(|k| k.key).collect();
            assert_eq!(keys, ["k", "z"]);
        }
    }
}
