//! Secrets out of log lines: the value after any key ending in `token` or `password`
//! (`token`, `refresh_token`, `new_password`...), in a query string (`?token=...`), a
//! `key=value` field, JSON (`"password":"..."`, also escaped inside a JSON log line) or a
//! Debug dump (`password: "..."`), becomes `[redacted]`.

use std::borrow::Cow;

pub const REDACTED: &str = "[redacted]";

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.ends_with("token") || key.ends_with("password")
}

/// Where the value after a key ending at `i` is: `(start, end)`, quotes excluded.
fn value_after(text: &[u8], mut i: usize) -> Option<(usize, usize)> {
    let at = |i: usize| text.get(i).copied();
    // The key's closing quote, plain or escaped.
    if at(i) == Some(b'\\') && at(i + 1) == Some(b'"') {
        i += 2;
    } else if matches!(at(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    while at(i) == Some(b' ') {
        i += 1;
    }
    if !matches!(at(i), Some(b'=' | b':')) {
        return None;
    }
    i += 1;
    while at(i) == Some(b' ') {
        i += 1;
    }
    // A Debug dump's optional value: `refresh_token: Some("r-1")`.
    if text[i.min(text.len())..].starts_with(b"Some(") {
        i += "Some(".len();
    }
    let start;
    let end;
    if at(i) == Some(b'\\') && at(i + 1) == Some(b'"') {
        start = i + 2;
        let mut j = start;
        while j < text.len() && !(text[j] == b'\\' && at(j + 1) == Some(b'"')) {
            j += if text[j] == b'\\' { 2 } else { 1 };
        }
        end = j.min(text.len());
    } else if let Some(quote @ (b'"' | b'\'')) = at(i) {
        start = i + 1;
        let mut j = start;
        while j < text.len() && text[j] != quote {
            j += if text[j] == b'\\' { 2 } else { 1 };
        }
        end = j.min(text.len());
    } else {
        start = i;
        let mut j = start;
        while j < text.len()
            && !text[j].is_ascii_whitespace()
            && !b"&,;\"'\\)]}<>".contains(&text[j])
        {
            j += 1;
        }
        end = j;
    }
    // Already redacted (the request line redacts its path itself).
    (end > start && !text[start..].starts_with(REDACTED.as_bytes())).then_some((start, end))
}

/// `text` with the value of every token or password key replaced by `[redacted]`.
pub fn secrets(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if !is_secret_key(&text[start..i]) {
            continue;
        }
        if let Some((from, to)) = value_after(bytes, i) {
            // Values end at ASCII bytes, so these are character boundaries.
            out.push_str(&text[copied..from]);
            out.push_str(REDACTED);
            copied = to;
            i = to;
        }
    }
    if copied == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::secrets;

    #[test]
    fn secrets_are_redacted_wherever_they_appear() {
        let cases = [
            (
                r#"RefreshIn { refresh_token: Some("r-1"), x: 1 }"#,
                r#"RefreshIn { refresh_token: Some("[redacted]"), x: 1 }"#,
            ),
            (
                "Request { password: Some(p-w), email: a }",
                "Request { password: Some([redacted]), email: a }",
            ),
            (
                "GET /api/account/verify?token=abc123 text/html",
                "GET /api/account/verify?token=[redacted] text/html",
            ),
            (
                "path=/reset-password?lang=en&token=abc&x=1 status=200",
                "path=/reset-password?lang=en&token=[redacted]&x=1 status=200",
            ),
            (
                r#"{"refresh_token":"r-1","password": "p w","email":"a@b"}"#,
                r#"{"refresh_token":"[redacted]","password": "[redacted]","email":"a@b"}"#,
            ),
            (
                r#"{"fields":{"message":"body {\"new_password\":\"x y\"}"}}"#,
                r#"{"fields":{"message":"body {\"new_password\":\"[redacted]\"}"}}"#,
            ),
            (
                r#"LoginIn { email: "a@b", password: "hunter2" }"#,
                r#"LoginIn { email: "a@b", password: "[redacted]" }"#,
            ),
            ("Access_Token=eyJ.x.y", "Access_Token=[redacted]"),
            ("token=[redacted]&b=1", "token=[redacted]&b=1"),
        ];
        for (line, want) in cases {
            assert_eq!(secrets(line), want);
        }
        for kept in [
            "token_type=bearer status=401 Invalid token",
            "POST /api/account/reset-password status=200",
            "password=",
            "mail to=a@b subject=\"Reset your password\"",
        ] {
            assert_eq!(secrets(kept), kept);
        }
    }
}
