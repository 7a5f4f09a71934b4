//! The request log line: one JSON object per request, built straight into bytes.
//!
//! Every request writes one, so it is built without a serializer: a request that does no I/O
//! spent more time serializing this line through `serde` than on the rest of it. Strings are
//! still escaped by `serde_json`; member names are fixed identifiers.

/// What happened while a request was handled. Empty and absent fields are left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcomes {
    /// Shards called, in first-call order, each once.
    pub shards: Vec<String>,
    /// How the edge cache served a read: `hit`, `miss` or `stale`.
    pub cache: Option<&'static str>,
    /// What the rate limiter decided.
    pub limiter: Option<&'static str>,
    /// Shards not called because their breaker was open.
    pub breaker_open: Vec<String>,
    /// Why a browser write was not counted as a visit (`crawler`, `headless_browser`).
    pub bot: Option<&'static str>,
    /// The request was an administrator's (export, erase).
    pub admin: bool,
}

impl Outcomes {
    /// Appends the outcomes as one JSON object.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = JsonObject::open(out);
        if !self.shards.is_empty() {
            object.member("shards").strings(&self.shards);
        }
        if let Some(cache) = self.cache {
            object.member("cache").string(cache);
        }
        if let Some(limiter) = self.limiter {
            object.member("limiter").string(limiter);
        }
        if !self.breaker_open.is_empty() {
            object.member("breaker_open").strings(&self.breaker_open);
        }
        if let Some(bot) = self.bot {
            object.member("bot").string(bot);
        }
        if self.admin {
            object.member("admin").number("true");
        }
        object.close();
    }
}

/// One request's log line.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The component that answered.
    pub component: &'a str,
    /// The method and the matched route pattern (never the path).
    pub route: &'a str,
    /// The response status.
    pub status: u16,
    /// Time from the request's arrival in the component to its answer's end, in µs.
    pub latency_micros: u64,
    /// What happened on the way.
    pub outcomes: &'a Outcomes,
}

impl Line<'_> {
    /// The line as JSON, newline-terminated:
    /// `{"component":…,"route":…,"status":…,"latency_ms":…,"outcomes":{…}}`.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        let mut object = JsonObject::open(&mut line);
        object.member("component").string(self.component);
        object.member("route").string(self.route);
        object
            .member("status")
            .number(itoa::Buffer::new().format(self.status));
        object
            .member("latency_ms")
            .number(&millis_with_micros(self.latency_micros));
        self.outcomes.write_json(object.member("outcomes").out);
        object.close();
        line.push(b'\n');
        line
    }
}

/// Room for a typical line, so building one allocates once.
const LINE_CAPACITY: usize = 192;

/// Microseconds as a JSON number of milliseconds with three decimals (`1234` → `1.234`).
fn millis_with_micros(micros: u64) -> String {
    let mut number = String::with_capacity(24);
    number.push_str(itoa::Buffer::new().format(micros / 1000));
    number.push('.');
    let fraction = micros % 1000;
    for digit in [fraction / 100, fraction / 10 % 10, fraction % 10] {
        number.push(char::from(b'0' + digit as u8));
    }
    number
}

/// A JSON object written into a byte buffer, member by member.
struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Starts the member `name`, a plain identifier (written as is); its value comes next.
    fn member(&mut self, name: &str) -> &mut Self {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self
    }

    fn string(&mut self, value: &str) {
        // Serializing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    fn strings(&mut self, values: &[String]) {
        let _ = serde_json::to_writer(&mut *self.out, values);
    }

    /// A number or a literal (`true`), already formatted.
    fn number(&mut self, formatted: &str) {
        self.out.extend_from_slice(formatted.as_bytes());
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(line: &Line) -> Value {
        let bytes = line.to_json_line();
        assert_eq!(bytes.last(), Some(&b'\n'), "newline-terminated");
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        serde_json::from_slice(&bytes).expect("valid JSON")
    }

    #[test]
    fn a_line_without_outcomes_has_an_empty_outcomes_object() {
        let line = Line {
            component: "health",
            route: "GET /health/...",
            status: 200,
            latency_micros: 11,
            outcomes: &Outcomes::default(),
        };
        assert_eq!(
            String::from_utf8(line.to_json_line()).unwrap(),
            "{\"component\":\"health\",\"route\":\"GET /health/...\",\"status\":200,\
             \"latency_ms\":0.011,\"outcomes\":{}}\n"
        );
    }

    #[test]
    fn every_outcome_is_written_and_strings_are_escaped() {
        let outcomes = Outcomes {
            shards: vec!["a".into(), "b\"\n".into()],
            cache: Some("hit"),
            limiter: Some("allowed"),
            breaker_open: vec!["b\"\n".into()],
            bot: Some("crawler"),
            admin: true,
        };
        let line = Line {
            component: "visits",
            route: "GET \"/visits/...\"\\",
            status: 503,
            latency_micros: 12_345_678,
            outcomes: &outcomes,
        };
        assert_eq!(
            parsed(&line),
            json!({
                "component": "visits",
                "route": "GET \"/visits/...\"\\",
                "status": 503,
                "latency_ms": 12345.678,
                "outcomes": {
                    "shards": ["a", "b\"\n"],
                    "cache": "hit",
                    "limiter": "allowed",
                    "breaker_open": ["b\"\n"],
                    "bot": "crawler",
                    "admin": true,
                },
            })
        );
    }

    #[test]
    fn latency_reads_as_milliseconds_with_three_decimals() {
        assert_eq!(millis_with_micros(0), "0.000");
        assert_eq!(millis_with_micros(11), "0.011");
        assert_eq!(millis_with_micros(1_500), "1.500");
        assert_eq!(millis_with_micros(999_999), "999.999");
        assert_eq!(millis_with_micros(u64::MAX), "18446744073709551.615");
    }
}
