//! The multi-part AOF manifest of Redis 7.0 (`<appendfilename>.manifest` in the AOF
//! directory): which base file and which incremental files make up the data set, and
//! which older files (history) wait to be deleted. Pure text in, text out: the caller
//! does the file I/O and the renames.
//!
//! Parsing follows `aofLoadManifestFromFile` rule for rule, C-string quirks included
//! (lines are read `fgets`-style in 1024-byte pieces, values are cut at a NUL), so a
//! manifest fanout accepts is one Redis accepts and the other way round. Rendering is
//! byte-identical to `getAofManifestAsString`.

use std::fmt::Write as _;

/// Redis reads the manifest with `fgets` into a 1024-byte buffer (`MANIFEST_MAX_LINE`).
const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The snapshot written by the last rewrite (`type b`).
    Base,
    /// Commands appended since (`type i`).
    Incr,
    /// Files from before a rewrite, to be deleted (`type h`).
    History,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Base => 'b',
            Kind::Incr => 'i',
            Kind::History => 'h',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    /// Redis keeps a `long long` and accepts any non-zero value (`seq -3` parses).
    pub seq: i64,
    pub kind: Kind,
}

impl FileInfo {
    /// Whether the name says RDB (`<name>.<seq>.base.rdb`, written with
    /// `aof-use-rdb-preamble yes`). Redis itself goes by the `REDIS` signature at the
    /// start of the file, not by the name; fanout writes `.aof` bases only.
    pub fn is_rdb_name(&self) -> bool {
        self.name.ends_with(".rdb")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileInfo>,
    /// In load order; sequence numbers strictly increase.
    pub incrs: Vec<FileInfo>,
    /// Newest first, as Redis prepends to its history list.
    pub history: Vec<FileInfo>,
    /// Sequence of the current base (0 if none): the next base gets `base_seq + 1`.
    pub base_seq: i64,
    /// Sequence of the last incr (0 if none). Like Redis, it restarts at 0 when the
    /// manifest lists no incr, even if history files carry higher numbers.
    pub incr_seq: i64,
}

/// `appendonly.aof` -> `appendonly.aof.manifest`.
pub fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

/// The manifest is written under this name and renamed over [`manifest_name`].
pub fn temp_manifest_name(filename: &str) -> String {
    format!("temp-{filename}.manifest")
}

impl Manifest {
    /// Parses manifest text. Errors carry Redis's message and, as Redis logs it, the
    /// line number and the offending line.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        if text.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        let mut m = Manifest::default();
        let mut rest = text.as_bytes();
        let mut linenum = 0;
        while !rest.is_empty() {
            // One fgets: through the first '\n', at most MAX_LINE bytes.
            let window = &rest[..rest.len().min(MAX_LINE)];
            let take = window.iter().position(|&b| b == b'\n').map_or(window.len(), |i| i + 1);
            let (piece, tail) = rest.split_at(take);
            rest = tail;
            linenum += 1;
            // From here on Redis uses C string functions, which stop at a NUL.
            let piece = cstr(piece);
            // A comment is skipped before the length check, so an over-long comment's
            // remainder is read as the next line.
            if piece.first() == Some(&b'#') {
                continue;
            }
            // Also hits a last line without its '\n': Redis rejects that too.
            if !piece.contains(&b'\n') {
                return Err(format!("The AOF manifest file contains too long line (line {linenum})"));
            }
            let line = trim(piece);
            let fail = |err: &str| Err(format!("{err} (line {linenum}: '{}')", String::from_utf8_lossy(line)));
            const INVALID: &str = "Invalid AOF manifest file format";
            if line.is_empty() {
                return fail(INVALID);
            }
            // `argc < 6` rather than `!= 6`: later versions may add key/value pairs.
            let args = match crate::protocol::request::split_words(line) {
                Some(a) if a.len() >= 6 && a.len() % 2 == 0 => a,
                _ => return fail(INVALID),
            };
            let (mut name, mut seq, mut ty) = (None, 0, 0u8);
            for pair in args.chunks(2) {
                let (key, val) = (cstr(&pair[0]), cstr(&pair[1]));
                if key.eq_ignore_ascii_case(b"file") {
                    if val.contains(&b'/') || val.contains(&b'\\') {
                        return fail("File can't be a path, just a filename");
                    }
                    name = Some(val);
                } else if key.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(val);
                } else if key.eq_ignore_ascii_case(b"type") {
                    ty = val.first().copied().unwrap_or(0);
                }
                // Unknown keys are ignored, for forward compatibility.
            }
            // An empty name passes (Redis only checks it was given); seq 0 and an empty
            // type do not.
            let (Some(name), true, true) = (name, seq != 0, ty != 0) else {
                return fail(INVALID);
            };
            // Redis names are bytes; fanout's are strings, so it cannot hold other names.
            let Ok(name) = String::from_utf8(name.to_vec()) else {
                return fail("AOF file name is not UTF-8");
            };
            let kind = match ty {
                b'b' if m.base.is_some() => return fail("Found duplicate base file information"),
                b'b' => {
                    m.base_seq = seq;
                    Kind::Base
                }
                b'h' => Kind::History,
                b'i' if seq <= m.incr_seq => return fail("Found a non-monotonic sequence number"),
                b'i' => {
                    m.incr_seq = seq;
                    Kind::Incr
                }
                _ => return fail("Unknown AOF file type"),
            };
            let info = FileInfo { name, seq, kind };
            match kind {
                Kind::Base => m.base = Some(info),
                Kind::Incr => m.incrs.push(info),
                Kind::History => m.history.push(info),
            }
        }
        // A manifest of comments only parses to an empty manifest, as in Redis.
        Ok(m)
    }

    /// The manifest text: base, then history, then incrs, one `file .. seq .. type ..`
    /// line each; names needing it quoted as `sdscatrepr` does.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let _ = writeln!(out, "file {} seq {} type {}", repr(&f.name), f.seq, f.kind.letter());
        }
        out
    }

    /// Nothing to load: no base and no incr (history does not count). Redis then starts
    /// empty and, with AOF on, writes a fresh base before opening an incr.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }

    /// Names the next base (`<filename>.<seq>.base.aof`) and makes it current; the old
    /// base, if any, goes to the front of history.
    pub fn new_base(&mut self, filename: &str) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = Kind::History;
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = format!("{filename}.{}.base.aof", self.base_seq);
        self.base = Some(FileInfo {
            name: name.clone(),
            seq: self.base_seq,
            kind: Kind::Base,
        });
        name
    }

    /// Names the next incr (`<filename>.<seq>.incr.aof`) and appends it.
    pub fn new_incr(&mut self, filename: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{filename}.{}.incr.aof", self.incr_seq);
        self.incrs.push(FileInfo {
            name: name.clone(),
            seq: self.incr_seq,
            kind: Kind::Incr,
        });
        name
    }

    /// After a successful rewrite (once [`new_base`](Self::new_base) named its output):
    /// the incrs the new base covers become history, in order, ahead of older history.
    /// `keep_current` is Redis's `aof_fd != -1`: with AOF on, the last incr is the one
    /// being appended to (opened when the rewrite started), so it stays.
    pub fn retire_incrs(&mut self, keep_current: bool) {
        let keep = if keep_current { self.incrs.pop() } else { None };
        let retired = std::mem::take(&mut self.incrs).into_iter().map(|mut f| {
            f.kind = Kind::History;
            f
        });
        self.history.splice(0..0, retired);
        self.incrs.extend(keep);
    }

    /// Turning the AOF on at run time: the files already there describe other data, so
    /// all of them become history (deleted once the first rewrite is in place).
    pub fn retire_all(&mut self) {
        if let Some(mut old) = self.base.take() {
            old.kind = Kind::History;
            self.history.insert(0, old);
        }
        self.retire_incrs(false);
    }

    /// What a load replays: the base, then every incr in order.
    pub fn files_to_load(&self) -> Vec<&FileInfo> {
        self.base.iter().chain(&self.incrs).collect()
    }

    /// Empties history and returns its files for deletion (Redis's
    /// `aofDelHistoryFiles` then persists the manifest without them).
    pub fn take_history(&mut self) -> Vec<FileInfo> {
        std::mem::take(&mut self.history)
    }
}

/// C's `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// C's `isprint` in the C locale: bytes of UTF-8 sequences are not printable.
fn is_print(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

/// The bytes a C string function sees: up to the first NUL.
fn cstr(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |i| &s[..i])
}

/// `sdstrim(line, " \t\r\n")`.
fn trim(s: &[u8]) -> &[u8] {
    let strip = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !strip(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !strip(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// `atoll` (glibc `strtoll`): leading blanks, a sign, digits up to the first other
/// byte, saturating on overflow; 0 when there are no digits.
fn atoll(s: &[u8]) -> i64 {
    let s = &s[s.iter().position(|&b| !is_space(b)).unwrap_or(s.len())..];
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &d in digits.iter().take_while(|b| b.is_ascii_digit()) {
        let d = i64::from(d - b'0');
        n = n.saturating_mul(10);
        n = if neg { n.saturating_sub(d) } else { n.saturating_add(d) };
    }
    n
}

/// The name as `aofInfoFormat` writes it: as is, or `sdscatrepr`-quoted if
/// `sdsneedsrepr` says so (blanks, quotes, backslashes, anything not printable).
/// One deliberate difference: Redis leaves a name with a single quote bare, and then
/// cannot parse its own manifest (the quote opens a quoted token); fanout quotes it.
fn repr(name: &str) -> String {
    let needs = name
        .bytes()
        .any(|b| matches!(b, b'\\' | b'"' | b'\'') || !is_print(b) || is_space(b));
    if !needs {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for b in name.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b if is_print(b) => out.push(b as char),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by redis-server 7.0.15 (`--appendonly yes --aof-use-rdb-preamble no`,
    /// a few writes, BGREWRITEAOF twice; history already collected).
    const REDIS_PLAIN: &str = "file appendonly.aof.3.base.aof seq 3 type b\n\
                               file appendonly.aof.3.incr.aof seq 3 type i\n";

    /// The same with `--aof-disable-auto-gc yes --appendfilename 'my "odd" filé.aof'`:
    /// quoted names, and the history order after two rewrites.
    const REDIS_ODD: &str = concat!(
        "file \"my \\\"odd\\\" fil\\xc3\\xa9.aof.3.base.aof\" seq 3 type b\n",
        "file \"my \\\"odd\\\" fil\\xc3\\xa9.aof.2.incr.aof\" seq 2 type h\n",
        "file \"my \\\"odd\\\" fil\\xc3\\xa9.aof.2.base.aof\" seq 2 type h\n",
        "file \"my \\\"odd\\\" fil\\xc3\\xa9.aof.1.incr.aof\" seq 1 type h\n",
        "file \"my \\\"odd\\\" fil\\xc3\\xa9.aof.1.base.aof\" seq 1 type h\n",
        "file \"my \\\"odd\\\" fil\\xc3\\xa9.aof.3.incr.aof\" seq 3 type i\n",
    );
    const ODD: &str = "my \"odd\" filé.aof";

    fn info(name: &str, seq: i64, kind: Kind) -> FileInfo {
        FileInfo {
            name: name.into(),
            seq,
            kind,
        }
    }

    fn with_base(name: &str) -> Manifest {
        Manifest {
            base: Some(info(name, 1, Kind::Base)),
            ..Manifest::default()
        }
    }

    #[test]
    fn redis_manifests_round_trip() {
        let m = Manifest::parse(REDIS_PLAIN).unwrap();
        assert_eq!(m.base, Some(info("appendonly.aof.3.base.aof", 3, Kind::Base)));
        assert_eq!(m.incrs, vec![info("appendonly.aof.3.incr.aof", 3, Kind::Incr)]);
        assert_eq!((m.base_seq, m.incr_seq), (3, 3));
        assert_eq!(m.render(), REDIS_PLAIN);

        let m = Manifest::parse(REDIS_ODD).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, format!("{ODD}.3.base.aof"));
        let hist: Vec<_> = m.history.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            hist,
            [".2.incr.aof", ".2.base.aof", ".1.incr.aof", ".1.base.aof"].map(|s| format!("{ODD}{s}"))
        );
        assert_eq!(m.render(), REDIS_ODD);
    }

    /// Server start, then two rewrites with AOF on, as Redis does them, gives exactly
    /// the manifest Redis wrote.
    #[test]
    fn operations_reproduce_redis() {
        let mut m = Manifest::default();
        assert!(m.is_empty());
        // Start on an empty data set: a base is forced, then the first incr is opened.
        assert_eq!(m.new_base(ODD), format!("{ODD}.1.base.aof"));
        assert_eq!(m.new_incr(ODD), format!("{ODD}.1.incr.aof"));
        for _ in 0..2 {
            m.new_incr(ODD); // opened when the rewrite starts
            m.new_base(ODD); // the rewrite is done
            m.retire_incrs(true);
        }
        assert_eq!(m.render(), REDIS_ODD);
        let load: Vec<_> = m.files_to_load().iter().map(|f| f.seq).collect();
        assert_eq!(load, [3, 3]);
        assert_eq!(m.take_history().len(), 4);
        assert!(m.history.is_empty());
    }

    #[test]
    fn retire_without_current_incr() {
        let mut m = Manifest::parse("file a.1.incr.aof seq 1 type i\nfile a.2.incr.aof seq 2 type i\n").unwrap();
        m.new_base("a");
        m.retire_incrs(false);
        assert!(m.incrs.is_empty());
        assert_eq!(
            m.render(),
            "file a.1.base.aof seq 1 type b\nfile a.1.incr.aof seq 1 type h\nfile a.2.incr.aof seq 2 type h\n"
        );
        // Redis's quirk: with no incr listed, numbering restarts at 1.
        m.take_history();
        assert_eq!(Manifest::parse(&m.render()).unwrap().new_incr("a"), "a.1.incr.aof");
    }

    #[test]
    fn names() {
        assert_eq!(manifest_name("appendonly.aof"), "appendonly.aof.manifest");
        assert_eq!(temp_manifest_name("appendonly.aof"), "temp-appendonly.aof.manifest");
        let m = Manifest::parse("file x.1.base.rdb seq 1 type b\n").unwrap();
        assert!(m.base.unwrap().is_rdb_name());
    }

    #[test]
    fn quoting_round_trips() {
        for name in [
            "with space",
            "q\"uote",
            "tab\there",
            "nl\nx",
            "bell\x07\x08\x0b",
            "é",
            "a'b",
        ] {
            let text = with_base(name).render();
            assert!(text.starts_with("file \""), "{text}");
            assert_eq!(Manifest::parse(&text).unwrap().base.unwrap().name, name);
        }
        assert_eq!(
            with_base("plain-name.aof").render(),
            "file plain-name.aof seq 1 type b\n"
        );
        assert_eq!(with_base("a\\b \x01").render(), "file \"a\\\\b \\x01\" seq 1 type b\n");
    }

    #[test]
    fn parsing_rules() {
        // Single quotes, quotes inside a bare token, case-insensitive keys in any order,
        // unknown keys ignored, strtoll-style numbers, CRLF, blanks, comments.
        let text = "# comment\r\n  TYPE b Seq +7x file 'it\\'s'  extra 1 \r\n\
                    file ab\"c d\" seq 2 type i\n#no newline at the end of a comment";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base, Some(info("it's", 7, Kind::Base)));
        assert_eq!(m.incrs, vec![info("abc d", 2, Kind::Incr)]);
        // History seqs need not increase; any type value is read by its first letter.
        let m = Manifest::parse("file a seq 5 type hist\nfile b seq -2 type h\n").unwrap();
        assert_eq!(
            m.history,
            vec![info("a", 5, Kind::History), info("b", -2, Kind::History)]
        );
        // Only comments: parses, nothing to load.
        assert!(Manifest::parse("# nothing\n").unwrap().is_empty());
        // A NUL inside a quoted value cuts it, as `sdsnew` on a C string does.
        let m = Manifest::parse("file \"ab\\x00cd\" seq 1 type b\n").unwrap();
        assert_eq!(m.base.unwrap().name, "ab");
    }

    #[test]
    fn errors() {
        let err = |t: &str| Manifest::parse(t).unwrap_err();
        let long = format!("file {} seq 1 type b\n", "x".repeat(MAX_LINE));
        let cases: &[(&str, &str)] = &[
            ("", "Found an empty AOF manifest"),
            (&long, "The AOF manifest file contains too long line"),
            ("file a seq 1 type b", "The AOF manifest file contains too long line"),
            ("\n", "Invalid AOF manifest file format"),
            ("file a seq 1 type b\n \t\r\n", "Invalid AOF manifest file format"),
            ("file a seq 1\n", "Invalid AOF manifest file format"),
            ("file a seq 1 type b x\n", "Invalid AOF manifest file format"),
            ("file \"a seq 1 type b\n", "Invalid AOF manifest file format"),
            ("file \"a\"b seq 1 type b\n", "Invalid AOF manifest file format"),
            ("file 'a'b seq 1 type b\n", "Invalid AOF manifest file format"),
            ("file a seq 0 type b\n", "Invalid AOF manifest file format"),
            ("file a seq x type b\n", "Invalid AOF manifest file format"),
            ("file a seq 1 type ''\n", "Invalid AOF manifest file format"),
            ("name a seq 1 type b\n", "Invalid AOF manifest file format"),
            ("file d/a seq 1 type b\n", "File can't be a path, just a filename"),
            (
                "file \"d\\\\a\" seq 1 type b\n",
                "File can't be a path, just a filename",
            ),
            ("file \"\\xff\" seq 1 type b\n", "AOF file name is not UTF-8"),
            (
                "file a seq 1 type b\nfile b seq 2 type b\n",
                "Found duplicate base file information",
            ),
            (
                "file a seq 2 type i\nfile b seq 2 type i\n",
                "Found a non-monotonic sequence number",
            ),
            ("file a seq -1 type i\n", "Found a non-monotonic sequence number"),
            ("file a seq 1 type x\n", "Unknown AOF file type"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.starts_with(want), "{text:?}: {got}");
        }
        // The offending line is reported as Redis logs it.
        assert_eq!(
            err("# c\nfile a seq 1 type b\n  file a seq 1 type q \n"),
            "Unknown AOF file type (line 3: 'file a seq 1 type q')"
        );
        // A comment longer than a read has its remainder read as a line of its own.
        let comment = format!("#{}\nfile a seq 1 type b\n", "c".repeat(MAX_LINE + 10));
        assert!(err(&comment).starts_with("Invalid AOF manifest file format (line 2:"));
    }
}
