//! CSV as the security office exchanges it with spreadsheets: RFC 4180 text, UTF-8 with a
//! byte-order mark, and cells that a spreadsheet could take for a formula neutralised.
//!
//! Why each rule:
//! - **BOM**: Excel opens a UTF-8 file without one in the system's legacy code page, which
//!   turns every Chinese name and department into mojibake.
//! - **RFC 4180**: fields with a comma, a quote or a line break are quoted, quotes doubled,
//!   records end with CRLF; so any cell text survives a round trip.
//! - **Formula injection** (CWE-1236): a cell starting with `=`, `+`, `-`, `@` (or a tab or
//!   carriage return, which some spreadsheets skip before one of those) is run as a formula
//!   when the file is opened, e.g. `=HYPERLINK(...)` in a person's name would leak data. Such
//!   a cell is prefixed with `'`, which spreadsheets show as text and hide.
//!
//! The parser (for imports) accepts what the writer writes and what spreadsheets save: an
//! optional BOM, CRLF or LF line ends, quoted fields with doubled quotes and line breaks. It
//! never panics; malformed input is a [`CsvError`] naming the line.

/// The UTF-8 byte-order mark.
pub const BOM: &str = "\u{feff}";

/// Characters that make a spreadsheet read a cell as a formula when they lead it.
const FORMULA_LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell text a spreadsheet shows as text: a leading formula character gets a `'` before it.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_LEADS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// One field as RFC 4180 writes it (quoted when it must be), after [`neutralise`].
fn field(cell: &str, out: &mut String) {
    let cell = neutralise(cell);
    if cell.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&cell);
    }
}

/// Append one record (CRLF-terminated) to `out`.
pub fn record<S: AsRef<str>>(cells: &[S], out: &mut String) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(cell.as_ref(), out);
    }
    out.push_str("\r\n");
}

/// A whole file: BOM, the header, then the rows.
pub fn document<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut out = String::from(BOM);
    record(header, &mut out);
    for row in rows {
        record(row, &mut out);
    }
    out
}

/// Why a CSV text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// A quoted field is not closed before the end of the text.
    #[error("line {line}: a quoted field is not closed")]
    Unclosed {
        /// The line where the field started (1-based).
        line: usize,
    },
    /// A quote stands in an unquoted field, or text follows a closing quote.
    #[error("line {line}: a stray quote")]
    StrayQuote {
        /// The line (1-based).
        line: usize,
    },
}

/// One parsed record and the line it starts on (1-based, counting the header as line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line the record starts on.
    pub line: usize,
    /// Its fields.
    pub fields: Vec<String>,
}

/// Parse CSV text into records; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut start_line = 1;
    let mut quoted_from: Option<usize> = None; // inside a quoted field started on this line
    let mut after_quote = false; // a quoted field just closed
    while let Some(c) = chars.next() {
        if quoted_from.is_some() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => {
                    quoted_from = None;
                    after_quote = true;
                }
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() && !after_quote => quoted_from = Some(line),
            '"' => return Err(CsvError::StrayQuote { line }),
            ',' => {
                fields.push(std::mem::take(&mut cell));
                after_quote = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut cell));
                after_quote = false;
                push_record(&mut records, start_line, std::mem::take(&mut fields));
                line += 1;
                start_line = line;
            }
            _ if after_quote => return Err(CsvError::StrayQuote { line }),
            _ => cell.push(c),
        }
    }
    if let Some(line) = quoted_from {
        return Err(CsvError::Unclosed { line });
    }
    if !cell.is_empty() || !fields.is_empty() || after_quote {
        fields.push(cell);
        push_record(&mut records, start_line, fields);
    }
    Ok(records)
}

fn push_record(records: &mut Vec<Record>, line: usize, fields: Vec<String>) {
    let blank = fields.len() == 1 && fields[0].is_empty();
    if !blank {
        records.push(Record { line, fields });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        record(
            &["plain", "a,b", "say \"hi\"", "two\nlines", "机密"],
            &mut out,
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",机密\r\n"
        );
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\t=x", "\r=x"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise("S-2026-0001"), "S-2026-0001");
        let mut out = String::new();
        record(&["=HYPERLINK(\"http://x\",\"y\")"], &mut out);
        assert_eq!(out, "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n");
    }

    #[test]
    fn a_document_starts_with_a_bom_and_parses_back() {
        let rows = vec![
            vec!["张三".to_owned(), "a,\"b\"\r\nc".to_owned()],
            vec![String::new(), "x".to_owned()],
        ];
        let text = document(&["name", "note"], &rows);
        assert!(text.starts_with('\u{feff}'));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].fields, ["name", "note"]);
        assert_eq!(parsed[1].fields, ["张三", "a,\"b\"\r\nc"]);
        assert_eq!(parsed[2].line, 4, "the quoted line break counts");
        assert_eq!(parsed[2].fields, ["", "x"]);
    }

    #[test]
    fn lf_files_and_blank_lines_and_a_missing_final_newline_are_read() {
        let parsed = parse("a,b\n\n1,2\n3,\"4\"").unwrap();
        let fields: Vec<_> = parsed.iter().map(|r| r.fields.clone()).collect();
        assert_eq!(fields, [vec!["a", "b"], vec!["1", "2"], vec!["3", "4"]]);
        assert_eq!(parsed[1].line, 3);
    }

    #[test]
    fn malformed_text_is_an_error_not_a_panic() {
        assert_eq!(parse("a,\"b\nc"), Err(CsvError::Unclosed { line: 1 }));
        assert_eq!(parse("a,b\"c\n"), Err(CsvError::StrayQuote { line: 1 }));
        assert_eq!(parse("\"a\"b\n"), Err(CsvError::StrayQuote { line: 1 }));
        for junk in ["\"", "\"\"\"", ",,,\r", "\r\r\n\"\n"] {
            let _ = parse(junk);
        }
    }
}
