//! Ordered key/value results printed as a human table and one JSON line.

use std::fmt::Write as _;

#[derive(Clone, Debug)]
pub enum Val {
    Int(i64),
    /// A float with the number of decimals to print.
    Float(f64, usize),
    Str(String),
    Bool(bool),
    Null,
}

impl Val {
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::Int(i) => Some(i as f64),
            Val::Float(f, _) if f.is_finite() => Some(f),
            _ => None,
        }
    }

    fn json(&self, out: &mut String) {
        match self {
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Float(f, d) if f.is_finite() => {
                let _ = write!(out, "{f:.d$}", d = *d);
            }
            Val::Float(..) | Val::Null => out.push_str("null"),
            Val::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Val::Str(s) => json_str(out, s),
        }
    }

    pub fn human(&self) -> String {
        match self {
            Val::Int(i) => group(*i),
            Val::Float(f, d) if f.is_finite() => {
                if f.abs() >= 10_000.0 {
                    group(f.round() as i64)
                } else {
                    format!("{f:.d$}", d = *d)
                }
            }
            Val::Float(..) | Val::Null => "-".into(),
            Val::Bool(b) => b.to_string(),
            Val::Str(s) => s.clone(),
        }
    }
}

/// 1234567 -> "1,234,567".
fn group(i: i64) -> String {
    let s = i.unsigned_abs().to_string();
    let mut out = String::new();
    if i < 0 {
        out.push('-');
    }
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One entry: `param` entries describe the run's configuration, the others
/// are measured figures.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: &'static str,
    pub val: Val,
    pub param: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        let mut r = Report::default();
        r.param("scenario", Val::Str(scenario.to_string()));
        r
    }

    pub fn param(&mut self, key: &'static str, val: Val) {
        self.entries.push(Entry { key, val, param: true });
    }

    pub fn fig(&mut self, key: &'static str, val: Val) {
        self.entries.push(Entry { key, val, param: false });
    }

    pub fn int(&mut self, key: &'static str, v: u64) {
        self.fig(key, Val::Int(v as i64));
    }

    pub fn float(&mut self, key: &'static str, v: f64, decimals: usize) {
        self.fig(key, Val::Float(v, decimals));
    }

    /// A float that may be absent (e.g. no --server-pid).
    pub fn opt_float(&mut self, key: &'static str, v: Option<f64>, decimals: usize) {
        self.fig(key, v.map_or(Val::Null, |v| Val::Float(v, decimals)));
    }

    pub fn opt_int(&mut self, key: &'static str, v: Option<u64>) {
        self.fig(key, v.map_or(Val::Null, |v| Val::Int(v as i64)));
    }

    pub fn get(&self, key: &str) -> Option<&Val> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.val)
    }

    pub fn table(&self) -> String {
        let w = self.entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
        let mut out = String::new();
        for e in &self.entries {
            let v = match &e.val {
                Val::Int(i) if e.param => i.to_string(),
                v => v.human(),
            };
            let _ = writeln!(out, "  {:<w$}  {}", e.key, v, w = w);
        }
        out
    }

    pub fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(&mut out, e.key);
            out.push(':');
            e.val.json(&mut out);
        }
        out.push('}');
        out
    }
}

/// Median of a non-empty slice.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Writes `v` as a JSON value (used by compare mode).
pub fn val_json(out: &mut String, v: &Val) {
    v.json(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let mut r = Report::new("fanout");
        r.param("subscribers", Val::Int(100));
        r.float("rate", 1234.5678, 1);
        r.opt_float("cpu", None, 2);
        r.fig("ok", Val::Bool(true));
        assert_eq!(
            r.json(),
            r#"{"scenario":"fanout","subscribers":100,"rate":1234.6,"cpu":null,"ok":true}"#
        );
        assert_eq!(group(-1234567), "-1,234,567");
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
