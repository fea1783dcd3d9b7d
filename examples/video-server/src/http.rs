//! HTTP/1.1 (RFC 9110, RFC 9112) as far as a static video server needs it:
//! request heads, request targets, byte ranges and response heads.
//!
//! Everything here is pure: bytes in, values out. The response loop that
//! writes to sockets lives in [`crate::session`].

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest request head accepted (request line, header fields and the
/// blank line, plus any empty lines before it). Bigger heads get a 431.
pub const MAX_HEAD: usize = 16 * 1024;

/// Most header fields accepted in one request.
pub const MAX_FIELDS: usize = 100;

/// The `Server` field of every response.
pub const SERVER: &str = concat!("edgemob-video-server/", env!("CARGO_PKG_VERSION"));

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A request method. Only GET and HEAD are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other(String),
}

/// A parsed request head: only the fields the server acts on are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target as received (not decoded).
    pub target: String,
    pub version: Version,
    pub host: Option<String>,
    /// The `Range` field (several fields are joined with commas).
    pub range: Option<String>,
    pub if_range: Option<String>,
    /// `Connection: close` was given.
    pub close: bool,
    /// `Connection: keep-alive` was given (meaningful for HTTP/1.0).
    pub keep_alive_token: bool,
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding` field was given: the request has a body.
    pub transfer_encoding: bool,
}

impl Request {
    /// Whether the connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        !self.close && (self.version == Version::Http11 || self.keep_alive_token)
    }

    /// Whether a body follows the head. The server never reads request
    /// bodies, so it closes the connection after answering such a request.
    pub fn has_body(&self) -> bool {
        self.transfer_encoding || self.content_length.is_some_and(|n| n > 0)
    }
}

/// Why a request head is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("request head larger than {MAX_HEAD} octets")]
    HeadTooLarge,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("unsupported HTTP version")]
    Version,
}

impl ParseError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::HeadTooLarge => 431,
            ParseError::Malformed(_) => 400,
            ParseError::Version => 505,
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Finds the end of a request head starting at `from`: the index just past
/// the empty line (CRLF or a bare LF) that ends it.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Parses one request head from the front of `buf`.
///
/// `Ok(None)`: the head is not complete yet. `Ok(Some((request, n)))`: the
/// head took the first `n` octets. Empty lines before the request line are
/// skipped (RFC 9112 §2.2); lines may end in CRLF or a bare LF.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, ParseError> {
    let mut start = 0;
    loop {
        match &buf[start..] {
            [b'\r', b'\n', ..] => start += 2,
            [b'\n', ..] => start += 1,
            _ => break,
        }
    }
    let Some(end) = head_end(buf, start) else {
        return if buf.len() >= MAX_HEAD {
            Err(ParseError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(ParseError::HeadTooLarge);
    }
    let mut lines = buf[start..end]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().ok_or(ParseError::Malformed("empty request"))?;
    let mut req = parse_request_line(request_line)?;
    let mut fields = 0;
    for line in lines {
        if line.is_empty() {
            // The blank line that ends the head (the split leaves one more
            // empty piece after its LF).
            continue;
        }
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(ParseError::HeadTooLarge);
        }
        parse_field(line, &mut req)?;
    }
    if req.transfer_encoding && req.content_length.is_some() {
        return Err(ParseError::Malformed(
            "both Transfer-Encoding and Content-Length",
        ));
    }
    if req.version == Version::Http11 && req.host.is_none() {
        return Err(ParseError::Malformed("HTTP/1.1 request without Host"));
    }
    Ok(Some((req, end)))
}

fn parse_request_line(line: &[u8]) -> Result<Request, ParseError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed(
            "request line is not METHOD SP TARGET SP VERSION",
        ));
    };
    if !is_token(method) {
        return Err(ParseError::Malformed("method is not a token"));
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(ParseError::Malformed("request target has invalid octets"));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(ParseError::Version);
        }
        _ => return Err(ParseError::Malformed("bad HTTP version")),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        other => Method::Other(String::from_utf8_lossy(other).into_owned()),
    };
    Ok(Request {
        method,
        // Checked above: visible ASCII only.
        target: String::from_utf8_lossy(target).into_owned(),
        version,
        host: None,
        range: None,
        if_range: None,
        close: false,
        keep_alive_token: false,
        content_length: None,
        transfer_encoding: false,
    })
}

fn parse_field(line: &[u8], req: &mut Request) -> Result<(), ParseError> {
    if line[0] == b' ' || line[0] == b'\t' {
        return Err(ParseError::Malformed("obsolete line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseError::Malformed("header field without a colon"))?;
    let name = &line[..colon];
    if !is_token(name) {
        return Err(ParseError::Malformed("header field name is not a token"));
    }
    let value = trim_ows(&line[colon + 1..]);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::Malformed(
            "control octet in a header field value",
        ));
    }
    let text = || String::from_utf8_lossy(value).into_owned();
    let name = name.to_ascii_lowercase();
    match name.as_slice() {
        b"host" => {
            if req.host.is_some() {
                return Err(ParseError::Malformed("several Host fields"));
            }
            req.host = Some(text());
        }
        b"range" => {
            req.range = Some(match req.range.take() {
                Some(prev) => format!("{prev}, {}", text()),
                None => text(),
            });
        }
        b"if-range" => req.if_range = Some(text()),
        b"connection" => {
            for token in value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    req.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    req.keep_alive_token = true;
                }
            }
        }
        b"content-length" => {
            // A list of identical values is allowed (RFC 9112 §6.3).
            for v in value.split(|&b| b == b',') {
                let v = trim_ows(v);
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 19 {
                    return Err(ParseError::Malformed("bad Content-Length"));
                }
                let n: u64 = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(ParseError::Malformed("bad Content-Length"))?;
                match req.content_length {
                    Some(m) if m != n => {
                        return Err(ParseError::Malformed("conflicting Content-Length"));
                    }
                    _ => req.content_length = Some(n),
                }
            }
        }
        b"transfer-encoding" => req.transfer_encoding = true,
        _ => {}
    }
    Ok(())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Why a request target does not name a servable file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an origin-form or absolute-form target, bad percent-encoding, a
    /// NUL octet, a name that is not UTF-8, or a `..` segment (an attempt
    /// to leave the content directory). Answered with 400.
    #[error("bad request target: {0}")]
    Bad(&'static str),
    /// The root itself, or a hidden file (a segment starting with `.`).
    /// Answered with 404.
    #[error("no such file")]
    NotFound,
}

/// Turns a request target into a file name relative to the content root:
/// `/movies/a%20b.mp4?t=3` → `movies/a b.mp4`.
///
/// Percent-decoding happens before the path is split and checked, so an
/// encoded `..` (`%2e%2e`) or `/` (`%2f`) cannot smuggle a parent segment
/// past the check. Empty and `.` segments are dropped. The result never
/// starts with `/` and never has a `..` segment.
pub fn target_name(target: &str) -> Result<String, TargetError> {
    let path = if target.starts_with('/') {
        target
    } else if let Some(rest) = strip_scheme(target) {
        // absolute-form: drop the authority.
        match rest.find(['/', '?', '#']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        }
    } else {
        return Err(TargetError::Bad(
            "not an origin-form or absolute-form target",
        ));
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let decoded = String::from_utf8(decoded).map_err(|_| TargetError::Bad("name is not UTF-8"))?;
    let mut segments = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(TargetError::Bad("parent segment")),
            s if s.starts_with('.') => return Err(TargetError::NotFound),
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        return Err(TargetError::NotFound);
    }
    Ok(segments.join("/"))
}

fn strip_scheme(target: &str) -> Option<&str> {
    for scheme in ["http://", "https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

fn percent_decode(s: &str) -> Result<Vec<u8>, TargetError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = if b[i] == b'%' {
            let hex = |x: u8| (x as char).to_digit(16);
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(TargetError::Bad("bad percent-encoding"));
            };
            i += 3;
            (h * 16 + l) as u8
        } else {
            i += 1;
            b[i - 1]
        };
        if c == 0 {
            return Err(TargetError::Bad("NUL in the path"));
        }
        out.push(c);
    }
    Ok(out)
}

/// What a `Range` field asks of a representation of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole representation (no Range, one to ignore, or several
    /// ranges: this server does not generate multipart/byteranges).
    Full,
    /// Serve octets `start..=last` with 206.
    Partial { start: u64, last: u64 },
    /// Answer 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    From(u64, Option<u64>),
    Suffix(u64),
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Longer than any size: saturate, it compares the same.
    Some(s.parse().unwrap_or(u64::MAX))
}

fn parse_spec(s: &str) -> Option<RangeSpec> {
    let (first, last) = s.split_once('-')?;
    if first.is_empty() {
        return parse_digits(last).map(RangeSpec::Suffix);
    }
    let first = parse_digits(first)?;
    if last.is_empty() {
        return Some(RangeSpec::From(first, None));
    }
    let last = parse_digits(last)?;
    (first <= last).then_some(RangeSpec::From(first, Some(last)))
}

fn satisfy(spec: RangeSpec, size: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From(first, _) if first >= size => None,
        RangeSpec::From(first, last) => Some((first, last.unwrap_or(u64::MAX).min(size - 1))),
        RangeSpec::Suffix(0) => None,
        RangeSpec::Suffix(n) => Some((size.saturating_sub(n), size - 1)),
    }
}

/// Evaluates a `Range` field against a representation of `size` octets
/// (RFC 9110 §14). Fields with another unit or invalid syntax are ignored
/// (the whole representation is served), as the RFC allows; an empty
/// representation is always served whole.
pub fn evaluate_range(range: Option<&str>, size: u64) -> RangeOutcome {
    let Some(range) = range else {
        return RangeOutcome::Full;
    };
    if size == 0 {
        return RangeOutcome::Full;
    }
    let Some((unit, set)) = range.trim().split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Full;
    }
    let mut specs = Vec::new();
    for item in set.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            continue;
        }
        match parse_spec(item) {
            Some(s) => specs.push(s),
            None => return RangeOutcome::Full,
        }
    }
    let satisfiable: Vec<_> = specs.iter().filter_map(|&s| satisfy(s, size)).collect();
    match (specs.len(), satisfiable.as_slice()) {
        (0, _) => RangeOutcome::Full,
        (_, []) => RangeOutcome::Unsatisfiable,
        (1, [(start, last)]) => RangeOutcome::Partial {
            start: *start,
            last: *last,
        },
        _ => RangeOutcome::Full,
    }
}

/// Whether an `If-Range` value lets a range request through: it must be
/// the representation's strong entity tag (RFC 9110 §13.1.5). This server
/// sends no Last-Modified, so a date never matches.
pub fn if_range_matches(if_range: &str, etag: &str) -> bool {
    if_range.trim() == etag
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The media type for a file name, by extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) if !ext.contains('/') => ext.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "ts" => "video/mp2t",
        "ogv" => "video/ogg",
        "m4s" => "video/iso.segment",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "oga" | "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "vtt" => "text/vtt; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year:04} {h:02}:{m:02}:{s:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// How a response ends the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 default: nothing to say.
    KeepAlive,
    /// HTTP/1.0 client that asked for keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// `Connection: close`; the server closes after the response.
    Close,
}

/// Builds a response head. `fields` come after Date and Server and before
/// Content-Length and Connection.
pub fn response_head(
    status: u16,
    fields: &[(&str, &str)],
    content_length: u64,
    persistence: Persistence,
    now: SystemTime,
) -> Vec<u8> {
    let mut h = String::with_capacity(256);
    let _ = write!(
        h,
        "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: {SERVER}\r\n",
        reason(status),
        http_date(now)
    );
    for (name, value) in fields {
        let _ = write!(h, "{name}: {value}\r\n");
    }
    let _ = write!(h, "Content-Length: {content_length}\r\n");
    match persistence {
        Persistence::KeepAlive => {}
        Persistence::KeepAlive10 => h.push_str("Connection: keep-alive\r\n"),
        Persistence::Close => h.push_str("Connection: close\r\n"),
    }
    h.push_str("\r\n");
    h.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(s: &str) -> Result<Option<(Request, usize)>, ParseError> {
        parse_request(s.as_bytes())
    }

    fn req(s: &str) -> Request {
        parse(s).expect("parses").expect("complete").0
    }

    #[test]
    fn parses_a_simple_get() {
        let s = "GET /a.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\nGET";
        let (r, n) = parse(s).unwrap().unwrap();
        assert_eq!(n, s.len() - 3);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.target, "/a.mp4");
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.host.as_deref(), Some("x"));
        assert_eq!(r.range.as_deref(), Some("bytes=0-9"));
        assert!(r.keep_alive());
        assert!(!r.has_body());
    }

    #[test]
    fn request_head_table() {
        use ParseError::*;
        let cases: &[(&str, Result<bool, ParseError>)] = &[
            // (input, Ok(complete?) or the error)
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", Ok(true)),
            ("GET / HTTP/1.1\nHost: x\n\n", Ok(true)),
            ("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", Ok(true)),
            ("GET / HTTP/1.0\r\n\r\n", Ok(true)),
            ("GET / HTTP/1.1\r\nHost: x\r\n", Ok(false)),
            ("GET / HTTP/1.1\r\nHost: x\r\n\r", Ok(false)),
            ("", Ok(false)),
            ("\r\n", Ok(false)),
            (
                "GET / HTTP/1.1\r\n\r\n",
                Err(Malformed("HTTP/1.1 request without Host")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Err(Malformed("several Host fields")),
            ),
            (
                "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
                Err(Malformed("request line is not METHOD SP TARGET SP VERSION")),
            ),
            (
                "GET / HTTP/1.1 x\r\nHost: x\r\n\r\n",
                Err(Malformed("request line is not METHOD SP TARGET SP VERSION")),
            ),
            (
                "GET /\r\nHost: x\r\n\r\n",
                Err(Malformed("request line is not METHOD SP TARGET SP VERSION")),
            ),
            (
                "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
                Err(Malformed("method is not a token")),
            ),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", Err(Version)),
            (
                "GET / HTTP/1.1x\r\nHost: x\r\n\r\n",
                Err(Malformed("bad HTTP version")),
            ),
            (
                "GET / http/1.1\r\nHost: x\r\n\r\n",
                Err(Malformed("bad HTTP version")),
            ),
            (
                "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                Err(Malformed("header field name is not a token")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                Err(Malformed("obsolete line folding")),
            ),
            (
                "GET / HTTP/1.1\r\nHost x\r\n\r\n",
                Err(Malformed("header field without a colon")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",
                Err(Malformed("control octet in a header field value")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
                Err(Malformed("bad Content-Length")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Err(Malformed("conflicting Content-Length")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n",
                Ok(true),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(Malformed("both Transfer-Encoding and Content-Length")),
            ),
            (
                "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
                Err(Malformed("request line is not METHOD SP TARGET SP VERSION")),
            ),
            (
                "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
                Err(Malformed("request target has invalid octets")),
            ),
        ];
        for (input, want) in cases {
            let got = parse(input).map(|r| r.is_some());
            assert_eq!(&got, want, "input {input:?}");
        }
    }

    #[test]
    fn head_size_is_bounded() {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        while s.len() < MAX_HEAD {
            s.push_str("X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        // Incomplete but already too big.
        assert_eq!(parse(&s), Err(ParseError::HeadTooLarge));
        s.push_str("\r\n");
        assert_eq!(parse(&s), Err(ParseError::HeadTooLarge));
        assert_eq!(ParseError::HeadTooLarge.status(), 431);
        // Just under the limit is fine.
        let mut ok = String::from("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        ok.push_str(&"a".repeat(MAX_HEAD - ok.len() - 4));
        ok.push_str("\r\n\r\n");
        assert_eq!(ok.len(), MAX_HEAD);
        assert!(parse(&ok).unwrap().is_some());
    }

    #[test]
    fn too_many_fields() {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..MAX_FIELDS {
            s.push_str(&format!("X-{i}: y\r\n"));
        }
        s.push_str("\r\n");
        assert_eq!(parse(&s), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn connection_semantics() {
        assert!(!req("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!req("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n").keep_alive());
        assert!(!req("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
        assert!(req("GET / HTTP/1.1\r\nHost: x\r\n\r\n").keep_alive());
        assert!(req("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").has_body());
        assert!(!req("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").has_body());
        assert!(req("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").has_body());
        assert_eq!(
            req("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n").method,
            Method::Other("DELETE".into())
        );
        assert_eq!(
            req("get / HTTP/1.1\r\nHost: x\r\n\r\n").method,
            Method::Other("get".into())
        );
        assert_eq!(
            req("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").method,
            Method::Head
        );
        let r = req("GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nrange: bytes=5-6\r\n\r\n");
        assert_eq!(r.range.as_deref(), Some("bytes=0-1, bytes=5-6"));
    }

    #[test]
    fn target_table() {
        use TargetError::*;
        let cases: &[(&str, Result<&str, TargetError>)] = &[
            ("/a.mp4", Ok("a.mp4")),
            ("/dir/a.mp4", Ok("dir/a.mp4")),
            ("//dir///./a.mp4", Ok("dir/a.mp4")),
            ("/a%20b.mp4?x=1#f", Ok("a b.mp4")),
            ("/caf%C3%A9.mp4", Ok("café.mp4")),
            ("http://host:80/x/y.mp4?q", Ok("x/y.mp4")),
            ("HTTP://host/y", Ok("y")),
            ("http://host", Err(NotFound)),
            ("http://host?x", Err(NotFound)),
            ("/", Err(NotFound)),
            ("/.hidden", Err(NotFound)),
            ("/d/.git/config", Err(NotFound)),
            ("/../etc/passwd", Err(Bad("parent segment"))),
            ("/a/../../etc/passwd", Err(Bad("parent segment"))),
            ("/%2e%2e/etc/passwd", Err(Bad("parent segment"))),
            ("/%2E%2E%2Fetc%2Fpasswd", Err(Bad("parent segment"))),
            ("/a%2f..%2fb", Err(Bad("parent segment"))),
            ("/a%00b", Err(Bad("NUL in the path"))),
            ("/a%zz", Err(Bad("bad percent-encoding"))),
            ("/a%2", Err(Bad("bad percent-encoding"))),
            ("/%ff", Err(Bad("name is not UTF-8"))),
            ("*", Err(Bad("not an origin-form or absolute-form target"))),
            (
                "a.mp4",
                Err(Bad("not an origin-form or absolute-form target")),
            ),
            (
                "ftp://h/a",
                Err(Bad("not an origin-form or absolute-form target")),
            ),
            ("/%2Fetc%2Fpasswd", Ok("etc/passwd")),
        ];
        for (t, want) in cases {
            assert_eq!(target_name(t).as_deref(), want.as_deref(), "target {t:?}");
        }
    }

    #[test]
    fn range_table() {
        use RangeOutcome::*;
        let p = |start, last| Partial { start, last };
        let cases: &[(Option<&str>, u64, RangeOutcome)] = &[
            (None, 100, Full),
            (Some("bytes=0-9"), 100, p(0, 9)),
            (Some("bytes=10-"), 100, p(10, 99)),
            (Some("bytes=-10"), 100, p(90, 99)),
            (Some("bytes=-1000"), 100, p(0, 99)),
            (Some("bytes=90-1000"), 100, p(90, 99)),
            (Some("bytes=99-99"), 100, p(99, 99)),
            (Some("BYTES = 5-6"), 100, p(5, 6)),
            (Some("bytes= 5-6 ,"), 100, p(5, 6)),
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=100-200"), 100, Unsatisfiable),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=99999999999999999999999-"), 100, Unsatisfiable),
            (Some("bytes=0-99999999999999999999999"), 100, p(0, 99)),
            (Some("bytes=200-300, 400-500"), 100, Unsatisfiable),
            (Some("bytes=0-1,5-6"), 100, Full),
            (Some("bytes=0-1,200-300"), 100, Full),
            (Some("bytes=9-5"), 100, Full),
            (Some("bytes=a-b"), 100, Full),
            (Some("bytes=-"), 100, Full),
            (Some("bytes=+1-2"), 100, Full),
            (Some("bytes="), 100, Full),
            (Some("bytes"), 100, Full),
            (Some("items=0-9"), 100, Full),
            (Some("bytes=0-9"), 0, Full),
            (Some("bytes=-5"), 0, Full),
        ];
        for (h, size, want) in cases {
            assert_eq!(evaluate_range(*h, *size), *want, "range {h:?} of {size}");
        }
    }

    #[test]
    fn if_range() {
        assert!(if_range_matches(" \"abc\" ", "\"abc\""));
        assert!(!if_range_matches("W/\"abc\"", "\"abc\""));
        assert!(!if_range_matches(
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "\"abc\""
        ));
    }

    #[test]
    fn dates() {
        let at = |s| http_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(at(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/b.MP4"), "video/mp4");
        assert_eq!(content_type("x.webm"), "video/webm");
        assert_eq!(content_type("x.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(content_type("dir.d/noext"), "application/octet-stream");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }

    #[test]
    fn head_layout() {
        let h = response_head(
            206,
            &[("Content-Range", "bytes 0-9/100")],
            10,
            Persistence::Close,
            UNIX_EPOCH,
        );
        let h = String::from_utf8(h).unwrap();
        assert!(h.starts_with(
            "HTTP/1.1 206 Partial Content\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        ));
        assert!(h.contains(
            "\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
        ));
        assert!(h.ends_with("\r\n\r\n"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            #[test]
            fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Ok(Some((_, n))) = parse_request(&bytes) {
                    prop_assert!(n <= bytes.len());
                }
            }

            #[test]
            fn parse_never_panics_on_near_requests(
                lines in proptest::collection::vec("[ -~\t]{0,40}", 0..8),
                sep in prop_oneof![Just("\r\n"), Just("\n"), Just("\r")],
            ) {
                let mut s = String::from("GET / HTTP/1.1");
                for l in &lines { s.push_str(sep); s.push_str(l); }
                s.push_str("\r\n\r\n");
                let _ = parse_request(s.as_bytes());
            }

            #[test]
            fn incomplete_heads_wait(cut in 0usize..60) {
                let s = b"GET /v.mp4 HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\n\r\n";
                let cut = cut.min(s.len() - 1);
                prop_assert_eq!(parse_request(&s[..cut]), Ok(None));
            }

            #[test]
            fn names_never_escape(t in "/[a-zA-Z0-9%./_-]{0,40}") {
                if let Ok(name) = target_name(&t) {
                    prop_assert!(!name.starts_with('/'));
                    prop_assert!(!name.is_empty());
                    prop_assert!(name.split('/').all(|s| !s.is_empty() && !s.starts_with('.')));
                }
            }

            #[test]
            fn single_ranges_are_exact(size in 1u64..1_000_000, a in 0u64..1_100_000, len in 0u64..100_000) {
                let b = a + len;
                let got = evaluate_range(Some(&format!("bytes={a}-{b}")), size);
                if a >= size {
                    prop_assert_eq!(got, RangeOutcome::Unsatisfiable);
                } else {
                    prop_assert_eq!(got, RangeOutcome::Partial { start: a, last: b.min(size - 1) });
                }
                let got = evaluate_range(Some(&format!("bytes=-{len}")), size);
                if len == 0 {
                    prop_assert_eq!(got, RangeOutcome::Unsatisfiable);
                } else {
                    prop_assert_eq!(got, RangeOutcome::Partial { start: size.saturating_sub(len), last: size - 1 });
                }
            }

            #[test]
            fn ranges_stay_in_bounds(h in "[ -~]{0,30}", size in 0u64..10_000) {
                if let RangeOutcome::Partial { start, last } = evaluate_range(Some(&h), size) {
                    prop_assert!(start <= last && last < size);
                }
            }
        }
    }
}
