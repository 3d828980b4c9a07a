//! Rows in PostgreSQL's COPY text format, the default of `COPY … FROM
//! STDIN`: fields apart by a tab, each row ended by a newline, NULL as `\N`.
//! A backslash, tab, newline or carriage return inside a value is written
//! as a backslash sequence, so no value can end a field or a row early, nor
//! read as NULL or as the end-of-data marker `\.` (PostgreSQL manual, COPY,
//! "Text Format").

use std::io::Write as _;

/// Rows being written, in the order of the `COPY` statement's columns.
pub struct CopyText {
    bytes: Vec<u8>,
    /// No field written yet on the current row: the next needs no tab.
    row_is_empty: bool,
}

impl CopyText {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            row_is_empty: true,
        }
    }

    /// A text field, escaped.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        for &byte in value.as_bytes() {
            // Every byte of a multi-byte UTF-8 character is 0x80 or more,
            // so only ASCII characters can match.
            match byte {
                b'\\' => self.bytes.extend_from_slice(b"\\\\"),
                b'\t' => self.bytes.extend_from_slice(b"\\t"),
                b'\n' => self.bytes.extend_from_slice(b"\\n"),
                b'\r' => self.bytes.extend_from_slice(b"\\r"),
                _ => self.bytes.push(byte),
            }
        }
        self
    }

    /// A text field, or NULL. An empty string stays an empty string.
    pub fn optional(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => {
                self.separate();
                self.bytes.extend_from_slice(b"\\N");
                self
            }
        }
    }

    pub fn integer(&mut self, value: i64) -> &mut Self {
        self.separate();
        // Writing into a Vec cannot fail.
        let _ = write!(self.bytes, "{value}");
        self
    }

    pub fn end_row(&mut self) {
        self.bytes.push(b'\n');
        self.row_is_empty = true;
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn separate(&mut self) {
        if !self.row_is_empty {
            self.bytes.push(b'\t');
        }
        self.row_is_empty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(write: impl FnOnce(&mut CopyText)) -> String {
        let mut rows = CopyText::with_capacity(0);
        write(&mut rows);
        String::from_utf8(rows.into_bytes()).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn fields_are_apart_by_tabs_and_rows_end_with_newlines() {
        let written = rows(|r| {
            r.integer(0).text("a").optional(Some("b")).end_row();
            r.integer(-12).text("").optional(None).end_row();
        });
        assert_eq!(written, "0\ta\tb\n-12\t\t\\N\n");
    }

    #[test]
    fn separators_and_backslashes_inside_values_are_escaped() {
        let written = rows(|r| {
            r.text("tab\there")
                .text("line\nbreak\r\n")
                .text(r"back\slash")
                .end_row();
        });
        assert_eq!(written, "tab\\there\tline\\nbreak\\r\\n\tback\\\\slash\n");
    }

    #[test]
    fn values_that_look_like_markers_stay_values() {
        // `\N` would read as NULL and `\.` alone on a line as the end of data.
        let written = rows(|r| {
            r.text(r"\N").end_row();
            r.text(r"\.").end_row();
        });
        assert_eq!(written, "\\\\N\n\\\\.\n");
    }

    #[test]
    fn quotes_commas_and_non_ascii_pass_unchanged() {
        let value = "Zoë \"Zed\" O'Brien, Jr. — 東京 🙂";
        let written = rows(|r| r.text(value).end_row());
        assert_eq!(written, format!("{value}\n"));
    }
}
